"""moto's server on one thread: each request is handled to the end before the next starts.

moto's own `moto_server` always serves threaded, and threaded moto applies a
TransactWriteItems without isolation from concurrent requests (racing conditional
transactions can both pass). Tollgate's exactness tests (quotas, credits, idempotency, the
store contract's concurrency cases) need DynamoDB's isolation, which a single-threaded server
gives. Usage: python moto_single.py HOST PORT
"""

import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, app, threaded=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
