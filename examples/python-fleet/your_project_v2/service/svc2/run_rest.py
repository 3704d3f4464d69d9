"""Entry point of svc2: python -m service.svc2.run_rest --port N."""

from service.common import serve

if __name__ == "__main__":
    serve("svc2")
