// SPDX-License-Identifier: MIT
// video.h - video input (video.c) for Glm4vVideoProcessor: frame folders, sample_frames, ffmpeg, timestamps.
#ifndef GLM4V_VIDEO_H
#define GLM4V_VIDEO_H

#include "checkpoint.h"
#include "image.h"

// video frames from a directory: every image file (by extension, hidden files skipped) in strcmp order, one size
int video_load_dir(Image **frames, int *nframes, const char *dir, int64_t max_pixels);
// Glm4vVideoProcessor.sample_frames (Glm46VVideoProcessor's when pc->glm46v): sampled frame indices (malloc'd into
// *idx, even count); duration <= 0: unknown. Returns the count or -1
int video_sample_frames(int **idx, int total_frames, double video_fps, double duration, const ProcConfig *pc);
// decode a video file with the ffmpeg program: frames sampled as video_sample_frames, frame_times [nframes] =
// frame_index / fps in seconds (malloc'd)
int video_load_file(Image **frames, int *nframes, double **frame_times, const char *path, const ProcConfig *pc,
                    int64_t max_pixels);
// per temporal patch timestamp text (frame_times[::2], padded with the last): "0", "1", ... (int seconds);
// GLM-4.6V: "0.0 seconds", ... ; *texts malloc'd [n_patches]
int video_timestamps(char ***texts, int n_patches, const double *frame_times, int nframes, const ProcConfig *pc);
void video_timestamps_free(char **texts, int n);

#endif
