"""Entry point of svc1: python -m service.svc1.run_rest --port N."""

from service.common import serve

if __name__ == "__main__":
    serve("svc1")
