// SPDX-License-Identifier: MIT
// server.h - `glm4v serve` (server.c): an OpenAI-compatible HTTP server over the engine, with continuous batching of
// --parallel sessions, prefix caching, Server-Sent Events streaming, metrics, API keys and graceful shutdown.
#ifndef GLM4V_SERVER_H
#define GLM4V_SERVER_H

// `glm4v serve ...` (argv[0] = "serve"): runs until SIGINT/SIGTERM; returns the exit status (0 after a clean stop)
int server_main(int argc, char **argv);

#endif
