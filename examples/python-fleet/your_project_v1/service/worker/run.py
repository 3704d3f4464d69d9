"""A batch worker that has no port: it prints a line now and then until stopped."""

import os
import sys
import time

from service import VERSION

if __name__ == "__main__":
    num = os.environ.get("STARVISOR_PROCESS_NUM", "0")
    interval = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    while True:
        print("worker %s (%s): working" % (num, VERSION), flush=True)
        time.sleep(interval)
