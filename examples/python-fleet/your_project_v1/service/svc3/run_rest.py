"""Entry point of svc3: python -m service.svc3.run_rest --port N."""

from service.common import serve

if __name__ == "__main__":
    serve("svc3")
