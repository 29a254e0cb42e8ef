"""The notices page: what one render costs with `--notices` notices on the line.

Two in-process stations (SQLite, the real console app); stuttgart sends `--notices`
protected sites to moscow, where a watch officer has the notices page open. Figures: the
page's live part, `GET /notices/live` (the history and the map's data), the mean of 10;
and the notices alone as the page reads them (`notice_view.notices_json`). Baseline, same
run: the same notices read one by one (`notice_json` per row, a handful of queries each),
as the page read them until 2026-11-28.

Prints figures, asserts nothing. Run from the repository root:
`.venv/bin/python bench/notices_page.py [--notices N]`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the in-process stations of the tests

from sqlalchemy import select  # noqa: E402
from tests.inproc import linked_pair  # noqa: E402
from tests.notice_docs import send, site  # noqa: E402
from tests.test_console import add_user, browser, log_in  # noqa: E402

from openline.adapters.schema import notices  # noqa: E402
from openline.core.clock import FakeClock  # noqa: E402
from openline.services import notice_view  # noqa: E402
from openline.services.accounts import Role  # noqa: E402


def mean_ms(fn: Callable[[], Any], rounds: int = 10) -> float:
    fn()
    started = time.perf_counter()
    for _ in range(rounds):
        fn()
    return (time.perf_counter() - started) / rounds * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notices", type=int, default=500)
    args = parser.parse_args()
    clock = FakeClock()
    with tempfile.TemporaryDirectory() as tmp:
        a, b = linked_pair(Path(tmp), clock)
        for i in range(args.notices):
            send(a, "moscow", site(a, 30 + (i % 50) * 0.1, 30 + (i // 50) * 0.1))
        a.drain()
        b.drain()
        add_user(b, "duty", Role.WATCH_OFFICER)
        page = browser(b)
        log_in(page, "duty")
        station = b.station
        with station.db.read() as conn:
            rows = conn.execute(select(notices).order_by(notices.c.created_at.desc())).all()

        def together() -> None:
            with station.db.read() as conn:
                notice_view.notices_json(station, conn, rows, content=True)

        def one_by_one() -> None:
            with station.db.read() as conn:
                for row in rows:
                    notice_view.notice_json(station, conn, row, content=True)

        live = mean_ms(lambda: page.get("/notices/live"))
        batched, single = mean_ms(together), mean_ms(one_by_one)
    print(f"moscow: {args.notices:,} notices received")
    print(f"the notices page's live part (GET /notices/live): {live:.0f} ms")
    print(
        f"the notices read as the page reads them: {batched:.0f} ms | baseline, same run: one by one, "
        f"as until 2026-11-28, {single:.0f} ms ({single / batched:.1f}x)"
    )


if __name__ == "__main__":
    main()
