# SPDX-License-Identifier: MIT
# server_lib.sh - sourced by the server tests (cli_server.sh, cli_server_pdf.sh, cli_webui.sh): start a server
# command in the background and wait for the URL its ready line prints. Uses the caller's $T (temporary folder) and
# PIDS array (the pids its cleanup kills).

# serve_start NAME CMD...: CMD in the background (stdout $T/NAME.out, stderr $T/NAME.err, pid added to PIDS); sets
# PID, and URL once the ready line names it (empty when CMD exits first or after 30 s)
serve_start() {
    local name=$1
    shift
    "$@" >"$T/$name.out" 2>"$T/$name.err" &
    PID=$!
    PIDS+=("$PID")
    URL=""
    for _ in $(seq 300); do
        URL=$(grep -o 'http://[0-9.]*:[0-9]*' "$T/$name.out" 2>/dev/null | head -n1)
        [ -n "$URL" ] && break
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
}
