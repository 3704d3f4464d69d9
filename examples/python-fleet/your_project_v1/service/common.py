"""A tiny JSON-over-HTTP server shared by the example services (standard library only)."""

import argparse
import http.server
import json
import os
import sys

from service import VERSION


def serve(name):
    """Serves GET / and GET /health on 127.0.0.1:--port until the process is stopped."""
    parser = argparse.ArgumentParser(prog=name)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    conf = os.environ.get("PYTHON_APP_CONF", "")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({
                "service": name,
                "version": VERSION,
                "python": sys.executable,
                "conf": conf,
            }).encode() + b"\n"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *fmt_args):
            print("%s: %s" % (name, fmt % fmt_args), flush=True)

    server = http.server.HTTPServer(("127.0.0.1", args.port), Handler)
    print("%s %s listening on 127.0.0.1:%d (python %s)" % (name, VERSION, args.port, sys.executable), flush=True)
    server.serve_forever()
