// SPDX-License-Identifier: MIT
// video.c - video input for Glm4vVideoProcessor: frame folders, frame sampling (sample_frames), video files decoded
// by the ffmpeg program, and the per-patch timestamp texts.
#include "video.h"
#include "preprocess.h"
#include "fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_VIDEO_BYTES ((uint64_t)16 << 30)   // decoded RGB frames kept in memory

// ----------------------------------------------------------------------------
// video: frame directories, frame sampling, ffmpeg decoding, timestamps

// a frame file name (by extension)
static int is_image_name(const char *n) {
    static const char *ext[] = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga",
                                ".psd", ".hdr", ".pnm", ".ppm", ".pgm"};
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (has_suffix_ci(n, ext[i])) return 1;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// every image file of dir in strcmp order (hidden files and other extensions skipped); all of one size
int video_load_dir(Image **frames, int *nframes, const char *dir, int64_t max_pixels) {
    *frames = NULL;
    *nframes = 0;
    DIR *d = opendir(dir);
    if (!d) return glm_err("%s: %s", dir, strerror(errno));
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !is_image_name(e->d_name)) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = realloc(names, sizeof(char *) * cap);
            if (!names) glm_die(EXIT_INPUT, "out of memory");
        }
        names[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    int rc = 0;
    Image *fr = NULL;
    if (n == 0) {
        rc = glm_err("%s: no image files (frames) in the directory", dir);
        goto done;
    }
    qsort(names, n, sizeof(char *), cmp_str);
    fr = xcalloc((size_t)n, sizeof(Image));
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        size_t plen = strlen(dir) + strlen(names[i]) + 2;
        char *path = xmalloc(plen);
        snprintf(path, plen, "%s/%s", dir, names[i]);
        if (image_load_file(&fr[i], path, max_pixels)) {
            free(path);
            rc = -1;
            break;
        }
        if (i > 0 && (fr[i].w != fr[0].w || fr[i].h != fr[0].h)) {
            rc = glm_err("%s: frame is %d x %d but %s/%s is %d x %d (all frames must have one size)", path, fr[i].w,
                         fr[i].h, dir, names[0], fr[0].w, fr[0].h);
            free(path);
            break;
        }
        free(path);
        total += (uint64_t)fr[i].w * fr[i].h * 3;
        if (total > MAX_VIDEO_BYTES) {
            rc = glm_err("%s: the frames need more than %llu bytes of memory", dir,
                         (unsigned long long)MAX_VIDEO_BYTES);
            break;
        }
    }
    if (rc) {
        images_free(fr, n);
        fr = NULL;
    } else {
        *frames = fr;
        *nframes = n;
    }
done:
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

// numpy.linspace(start, stop, num, endpoint=True) then .astype(int) (or the float values when out_f)
static void np_linspace(double start, double stop, int num, int64_t *out_i, double *out_f) {
    int div = num - 1;
    double delta = stop - start;
    double step = div > 0 ? delta / div : 0.0;
    for (int i = 0; i < num; i++) {
        // y = arange(0, num) * step + start; y[-1] = stop
        double y = div > 0 ? (step == 0 ? (double)i / div * delta : i * step) + start : start;
        if (i == num - 1 && num > 1) y = stop;
        if (out_i) out_i[i] = (int64_t)y;
        if (out_f) out_f[i] = y;
    }
}

// sampled index list: drop repeats (keep order), duplicate the last one when the count is odd
static int dedupe_pad_even(int64_t *idx, int n) {
    int k = 0, sorted = 1;
    for (int i = 1; i < n && sorted; i++) sorted = idx[i - 1] <= idx[i];
    for (int i = 0; i < n; i++) {
        int seen = 0;
        if (sorted) seen = k > 0 && idx[k - 1] == idx[i]; // non-decreasing (every sampler): linear time
        else
            for (int j = 0; j < k && !seen; j++) seen = idx[j] == idx[i];
        if (!seen) idx[k++] = idx[i];
    }
    if (k & 1) {
        idx[k] = idx[k - 1];
        k++;
    }
    return k;
}

// Glm4vVideoProcessor.sample_frames(metadata, fps) / Glm46VVideoProcessor.sample_frames: frame indices to decode
int video_sample_frames(int **idx_out, int total_frames, double video_fps, double duration, const ProcConfig *pc) {
    *idx_out = NULL;
    if (total_frames <= 0) return glm_err("video has no frames");
    if (total_frames > (1 << 26)) return glm_err("video has too many frames (%d)", total_frames); // 26 days at 30 fps
    if (!(video_fps > 0) || !isfinite(video_fps)) return glm_err("video frame rate unknown (%g)", video_fps);
    int64_t max_frame_idx = total_frames - 1;
    // duration = metadata.duration or round(max_frame_idx / metadata.fps) + 1
    if (!(duration > 0) || !isfinite(duration)) duration = nearbyint(max_frame_idx / video_fps) + 1; // Python round(): halves to even
    int64_t *idx = NULL;
    int n = 0;
    if (!pc->glm46v) {
        // Glm4vVideoProcessor.sample_frames
        double requested_fps = pc->video_fps > 0 ? pc->video_fps : 2;
        double max_duration = pc->video_max_duration > 0 ? pc->video_max_duration : 300;
        if (duration <= max_duration) {
            // n = max(int(math.floor(duration * requested_fps)), 1)
            double nf = floor(duration * requested_fps);
            n = nf < 1 ? 1 : nf > 1e6 ? 1000000 : (int)nf;
            idx = xmalloc(sizeof(int64_t) * (n + 1));
            // frame_indices = [min(max_frame_idx, int(math.ceil(i * metadata.fps / requested_fps))) for i in range(n)]
            for (int i = 0; i < n; i++) {
                double v = ceil(i * video_fps / requested_fps);
                idx[i] = v > (double)max_frame_idx ? max_frame_idx : (int64_t)v;
            }
        } else {
            // num_samples = int(self.max_duration * requested_fps) (compared in double: it may not fit an int)
            double ns = floor(max_duration * requested_fps);
            int num_samples = ns >= total_frames ? total_frames : (int)ns;
            if (num_samples >= total_frames) {
                n = total_frames;
                idx = xmalloc(sizeof(int64_t) * (n + 1));
                for (int i = 0; i < n; i++) idx[i] = i;
            } else {
                // target_seconds = np.linspace(0, duration, num_samples, endpoint=True)
                n = num_samples < 0 ? 0 : num_samples;
                idx = xmalloc(sizeof(int64_t) * (n + 1));
                double *ts = xmalloc(sizeof(double) * (n + 1));
                np_linspace(0, duration, n, NULL, ts);
                // [min(max_frame_idx, int(math.ceil(t * metadata.fps))) for t in target_seconds]
                for (int i = 0; i < n; i++) {
                    double v = ceil(ts[i] * video_fps);
                    idx[i] = v > (double)max_frame_idx ? max_frame_idx : (int64_t)v;
                }
                free(ts);
            }
        }
    } else {
        // Glm46VVideoProcessor.sample_frames: dynamic fps
        double effective = duration < 2400 ? duration : 2400;
        double target_fps = effective <= 30 ? 3 : effective <= 300 ? 1 : 0.5;
        // extract_t = min(int(effective_duration * target_fps * self.temporal_patch_size), MAX_FRAME_COUNT_DYNAMIC)
        double et = effective * target_fps * pc->temporal_patch_size;
        int extract_t = et > 640 ? 640 : (int)et;
        double duration_per_frame = 1 / video_fps;
        int64_t max_second = (int64_t)duration;
        idx = xmalloc(sizeof(int64_t) * ((size_t)(extract_t > total_frames ? extract_t : total_frames) + 1));
        if (total_frames < extract_t) {
            np_linspace(0, total_frames - 1, extract_t, idx, NULL);
            n = extract_t;
        } else {
            double current_second = 0;
            double inv_fps = 1 / (pc->temporal_patch_size * target_fps);
            for (int64_t i = 0; i < total_frames; i++) {
                // timestamps[i] = i * duration_per_frame
                if (i * duration_per_frame >= current_second) {
                    current_second += inv_fps;
                    idx[n++] = i;
                    if (current_second >= max_second) break;
                }
            }
        }
        if (n < extract_t) {
            int64_t start = n ? idx[0] : 0, end = n ? idx[n - 1] : (total_frames - 1 > 0 ? total_frames - 1 : 0);
            np_linspace(start, end, extract_t, idx, NULL);
            n = extract_t;
        } else if (n > extract_t) {
            np_linspace(0, total_frames - 1, extract_t, idx, NULL);
            n = extract_t;
        }
    }
    n = dedupe_pad_even(idx, n);
    if (n == 0) {
        free(idx);
        return glm_err("video: no frames sampled (duration %g s)", duration);
    }
    int *out = xmalloc(sizeof(int) * n);
    for (int i = 0; i < n; i++) out[i] = (int)idx[i];
    free(idx);
    *idx_out = out;
    return n;
}

// Glm4vProcessor.replace_video_token: timestamp text after each temporal patch (replace_frame_token_id)
int video_timestamps(char ***texts, int n_patches, const double *frame_times, int nframes, const ProcConfig *pc) {
    *texts = NULL;
    if (n_patches < 0) return glm_err("video_timestamps: bad patch count %d", n_patches);
    char **out = xcalloc((size_t)n_patches + 1, sizeof(char *));
    double last = 0;
    int have = 0;
    for (int f = 0; f < n_patches; f++) {
        // timestamps = metadata.timestamps[::2]; selected = timestamps[:num_frames]; pad by repeating the last (or 0)
        int64_t k = (int64_t)f * 2;
        double t;
        if (k < nframes) {
            t = frame_times[k];
            last = t;
            have = 1;
        } else {
            t = have ? last : 0;
        }
        char buf[64];
        if (pc->glm46v) snprintf(buf, sizeof buf, "%.1f seconds", t); // f"{timestamp_sec:.1f} seconds"
        else snprintf(buf, sizeof buf, "%lld", (long long)t);          // f"{int(timestamp_sec)}"
        out[f] = xstrdup(buf);
    }
    *texts = out;
    return 0;
}

// free video_timestamps' strings
void video_timestamps_free(char **texts, int n) {
    if (!texts) return;
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
}

// start argv[0] with stdout on a pipe (stdin and stderr on /dev/null); returns the read end or -1
static int spawn_reader(char *const argv[], pid_t *pid) {
    int fds[2];
    if (pipe(fds) != 0) return glm_err("pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    int rc = posix_spawn(pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return glm_err("cannot run %s: %s", argv[0], strerror(rc));
    }
    return fds[0];
}

// read exactly n bytes (fewer only at end of stream); returns bytes read or -1
static ssize_t read_full(int fd, uint8_t *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

// exit status of a child (128 + signal when killed)
static int wait_child(pid_t pid) {
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

// "num/den" or a plain number
static double parse_rate(const char *s) {
    char *end;
    double a = strtod(s, &end);
    if (*end == '/') {
        double b = strtod(end + 1, NULL);
        return b != 0 ? a / b : 0;
    }
    return a;
}

// read_video_torchcodec + sample_frames with the ffmpeg / ffprobe programs (frames in presentation order, rgb24;
// rotation metadata is not applied)
int video_load_file(Image **frames, int *nframes, double **frame_times, const char *path, const ProcConfig *pc,
                    int64_t max_pixels) {
    *frames = NULL;
    *nframes = 0;
    *frame_times = NULL;
    struct stat st;
    if (stat(path, &st) != 0) return glm_err("%s: %s", path, strerror(errno));
    // ffprobe reads the file, then ffmpeg reads it again: a pipe gives its bytes once, so it is refused (save it first)
    if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode))
        return glm_err("%s: a pipe or device: a video file is read twice (ffprobe, then ffmpeg); save it to a file or "
                       "pass a folder of frames", path);
    if (!S_ISREG(st.st_mode)) return glm_err("%s: not a regular file", path);
    char *ffmpeg = find_program("ffmpeg"), *ffprobe = find_program("ffprobe");
    if (!ffmpeg || !ffprobe) {
        free(ffmpeg);
        free(ffprobe);
        return glm_err("ffmpeg not found: install ffmpeg to read video files, or pass a directory of frames");
    }
    int rc = -1;
    Image *fr = NULL;
    int *idx = NULL;
    int nidx = 0;
    uint8_t *buf = NULL;
    // metadata (torchcodec VideoDecoder(seek_mode="exact"): num_frames from a scan, average_fps = frames / duration)
    char *probe_argv[] = {ffprobe, "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
                          "stream=width,height,avg_frame_rate,duration,nb_read_packets:format=duration", "-of",
                          "default=noprint_wrappers=1", (char *)path, NULL};
    pid_t pid;
    int fd = spawn_reader(probe_argv, &pid);
    if (fd < 0) goto done;
    char text[4096];
    ssize_t tn = read_full(fd, (uint8_t *)text, sizeof text - 1);
    close(fd);
    int status = wait_child(pid);
    if (tn < 0 || status != 0) {
        glm_err("%s: ffprobe cannot read the video (exit status %d)", path, status);
        goto done;
    }
    text[tn] = 0;
    int w = 0, h = 0;
    long long total = 0;
    double avg_fps = 0, sdur = 0, fdur = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *eq = strchr(line, '=');
        if (!eq) continue;
        *eq = 0;
        const char *v = eq + 1;
        if (!strcmp(line, "width")) w = atoi(v);
        else if (!strcmp(line, "height")) h = atoi(v);
        else if (!strcmp(line, "avg_frame_rate")) avg_fps = parse_rate(v);
        else if (!strcmp(line, "nb_read_packets")) total = atoll(v);
        else if (!strcmp(line, "duration") && strcmp(v, "N/A")) {
            if (sdur == 0) sdur = atof(v); // stream entry comes first, then format
            else fdur = atof(v);
        }
    }
    double duration = sdur > 0 ? sdur : fdur;
    if (w <= 0 || h <= 0 || total <= 0) {
        glm_err("%s: no decodable video stream (%d x %d, %lld frames)", path, w, h, total);
        goto done;
    }
    if (total > INT_MAX / 2) {
        glm_err("%s: too many frames (%lld)", path, total);
        goto done;
    }
    if (max_pixels > 0 && (int64_t)w * h > max_pixels) {
        glm_err("%s: video frames are %d x %d = %lld pixels, above the limit of %lld (--max-image-pixels)", path, w, h,
                (long long)w * h, (long long)max_pixels);
        goto done;
    }
    double fps = duration > 0 ? (double)total / duration : avg_fps;
    nidx = video_sample_frames(&idx, (int)total, fps, duration, pc);
    if (nidx < 0) goto done;
    size_t frame_bytes = (size_t)w * h * 3; // w, h < 2^31
    if (frame_bytes > MAX_VIDEO_BYTES / (uint64_t)nidx) {
        glm_err("%s: %d sampled frames of %d x %d need too much memory", path, nidx, w, h);
        goto done;
    }
    // decode every frame in presentation order as raw RGB, keep the sampled ones
    char *dec_argv[] = {ffmpeg, "-nostdin", "-v", "error", "-noautorotate", "-i", (char *)path, "-map", "0:v:0",
                        "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-", NULL};
    fd = spawn_reader(dec_argv, &pid);
    if (fd < 0) goto done;
    fr = xcalloc((size_t)nidx, sizeof(Image));
    buf = xmalloc(frame_bytes);
    int next = 0;      // next sampled slot to fill
    int decoded = 0;   // frames read so far
    int have_last = 0; // buf holds the last decoded frame
    while (next < nidx) {
        ssize_t r = read_full(fd, buf, frame_bytes);
        if (r != (ssize_t)frame_bytes) break;
        have_last = 1;
        while (next < nidx && idx[next] == decoded) {
            fr[next].w = w;
            fr[next].h = h;
            fr[next].rgb = xmalloc(frame_bytes);
            memcpy(fr[next].rgb, buf, frame_bytes);
            next++;
        }
        decoded++;
    }
    close(fd); // ffmpeg gets SIGPIPE if it still writes
    status = wait_child(pid);
    if (next < nidx) {
        // fewer frames than counted: the remaining indices take the last decoded frame
        if (!have_last || status != 0) {
            glm_err("%s: ffmpeg could not decode the video (exit status %d, %d frames)", path, status, decoded);
            goto done;
        }
        for (; next < nidx; next++) {
            fr[next].w = w;
            fr[next].h = h;
            fr[next].rgb = xmalloc(frame_bytes);
            memcpy(fr[next].rgb, buf, frame_bytes);
        }
    }
    // metadata.timestamps = [frame_idx / fps for frame_idx in frames_indices]
    double *times = xmalloc(sizeof(double) * nidx);
    for (int i = 0; i < nidx; i++) times[i] = idx[i] / fps;
    *frames = fr;
    *nframes = nidx;
    *frame_times = times;
    fr = NULL;
    rc = 0;
done:
    if (fr) images_free(fr, nidx);
    free(buf);
    free(idx);
    free(ffmpeg);
    free(ffprobe);
    return rc;
}

