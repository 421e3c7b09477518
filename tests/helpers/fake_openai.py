"""A local OpenAI-compatible HTTP server for judge tests (127.0.0.1, bounded, stops with the test)."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    """Serves /v1/chat/completions from a script of behaviours, then a default reply.

    Behaviours: ("ok", text), ("status", code), ("sleep", seconds, text), ("echo_key", code): an
    error whose message repeats the API key, as some servers do, ("raw", code, body): any body, and
    ("hang", seconds): no answer at all for that long.
    """

    def __init__(self, script=(), default_text="The answer is fine. Rating: [[7]]"):
        self.script = list(script)
        self.default_text = default_text
        self.requests: list[dict] = []
        self.auth_headers: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(body)
                fake.auth_headers.append(self.headers.get("Authorization", ""))
                action = fake.script.pop(0) if fake.script else ("ok", fake.default_text)
                if action[0] == "status":
                    self._send(action[1], {"error": {"message": "server error", "type": "server_error"}})
                    return
                if action[0] == "echo_key":
                    key = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    message = f"Incorrect API key provided: {key}. Rating: [[9]]"
                    self._send(action[1], {"error": {"message": message, "type": "invalid_request_error"}})
                    return
                if action[0] == "raw":
                    self._send(action[1], action[2])
                    return
                if action[0] == "hang":
                    time.sleep(action[1])
                    return
                if action[0] == "sleep":
                    time.sleep(action[1])
                    action = ("ok", action[2])
                self._send(
                    200,
                    {
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": action[1]},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    },
                )

            def _send(self, code, obj):
                data = obj.encode() if isinstance(obj, str) else json.dumps(obj).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
