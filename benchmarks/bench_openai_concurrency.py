"""The OpenAI plugin against a local endpoint that answers after 200 ms: the default
concurrency against one request at a time, measured in the same run, printed as a ratio.

    python benchmarks/bench_openai_concurrency.py [--delay 0.2] [--requests 128] [--serial-requests 16]

Needs dfabench-openai installed (pip install -e plugins/dfabench-openai). The endpoint is
dfabench.testing.chat_server on 127.0.0.1; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import time

from PIL import Image

from dfabench.models import GenerateRequest, GenerationSettings
from dfabench.testing.chat_server import ChatServer


class TunedChatServer(ChatServer):
    """The test endpoint with what production servers (uvicorn, vLLM) do and the stdlib server
    does not: TCP_NODELAY (else each reply waits ~40 ms for a delayed ACK) and a listen backlog
    large enough for many simultaneous connections (the stdlib's 5 drops SYNs: 1 s retries).
    Without them the numbers measure the test server, not the plugin."""

    def _handler_class(self):
        handler = super()._handler_class()
        handler.disable_nagle_algorithm = True
        return handler

    def start(self):
        super().start()
        self._httpd.socket.listen(256)
        return self


def requests_for(n: int, image: Image.Image) -> list[GenerateRequest]:
    return [GenerateRequest(sample_id=f"s{i}", image=image, image_path="", task="DF-D",
                            messages=[{"role": "user", "content": [{"type": "image"},
                                                                   {"type": "text", "text": f"Forged? {i}"}]}],
                            settings=GenerationSettings(max_new_tokens=8))
            for i in range(n)]


def throughput(model, requests: list[GenerateRequest], batch_size: int) -> float:
    """Requests per second, handing the model batches as the runner does."""
    start = time.perf_counter()
    for first in range(0, len(requests), batch_size):
        answers = model.generate(requests[first:first + batch_size])
        failed = [a.error for a in answers if a.error]
        if failed:
            raise SystemExit(f"a request failed: {failed[0]}")
    return len(requests) / (time.perf_counter() - start)


def main() -> None:
    from dfabench_openai.model import OpenAIModel

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.2, help="seconds the endpoint takes per reply")
    parser.add_argument("--requests", type=int, default=128, help="requests with the default concurrency")
    parser.add_argument("--serial-requests", type=int, default=16, help="requests one at a time")
    args = parser.parse_args()

    image = Image.new("RGB", (224, 224), (120, 90, 60))
    with TunedChatServer(responder=lambda body: "No.", delay=args.delay) as server:
        default = OpenAIModel(model="bench-model", base_url=server.base_url, probe=False)
        serial = OpenAIModel(model="bench-model", base_url=server.base_url, probe=False, concurrency=1)
        try:
            throughput(default, requests_for(4, image), default.default_batch_size)  # warm-up (connections)
            fast = throughput(default, requests_for(args.requests, image), default.default_batch_size)
            slow = throughput(serial, requests_for(args.serial_requests, image), 1)
        finally:
            default.close()
            serial.close()
    print(f"endpoint delay {args.delay * 1000:.0f} ms; default concurrency {default.concurrency}, "
          f"batch size {default.default_batch_size}")
    print(f"one at a time:       {slow:8.2f} requests/s ({args.serial_requests} requests)")
    print(f"default concurrency: {fast:8.2f} requests/s ({args.requests} requests)")
    print(f"speed-up: {fast / slow:.1f}x (aim: >= 20x)")


if __name__ == "__main__":
    main()
