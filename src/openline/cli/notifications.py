"""`openline notifications` (who was paged, and whether it went) and `openline notify
test` (a test page, to see that e-mail and webhooks reach people before they are needed)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.text import Text

from openline.cli.main import HomeOpt, JsonOpt, LimitOpt, app, before_last, client, emit, fail
from openline.cli.render import limit_reached, listing, out, when

notify_app = typer.Typer(help="Test that pages reach people.", no_args_is_help=True)
app.add_typer(notify_app, name="notify")
STATUS_STYLE = {"pending": "yellow", "sent": "", "failed": "bold red", "folded": "dim"}
WAIT_POLL_S = 0.5


def _table(items: list[dict[str, Any]]) -> None:
    rows = [
        (
            when(x["created_at"]),
            x["kind"],
            x["recipient"],
            f"{x['channel']} {x['address']}" if x["channel"] != "console" else "console",
            Text(x["status"], style=STATUS_STYLE.get(x["status"], "")),
            _about(x),
            (x["last_error"] or "")[:200],
        )
        for x in items
    ]
    listing(
        ("created", "kind", "recipient", "channel", "status", "about", "last error"),
        rows,
        wrap=("created", "channel", "about", "last error"),
    )


def _about(x: dict[str, Any]) -> str:
    if x["call"]:
        return f"call {x['call']}"
    if x["alert"]:
        return f"alert {x['alert']}"
    return ""


@app.command("notifications")
def notifications_cmd(
    home: HomeOpt,
    call: Annotated[str | None, typer.Option(help="Only those about this call.")] = None,
    alert: Annotated[int | None, typer.Option(min=1, metavar="ID", help="Only this alert's pages.")] = None,
    status: Annotated[str | None, typer.Option(help="pending, sent, failed or folded.")] = None,
    channel: Annotated[str | None, typer.Option(help="console, email or webhook.")] = None,
    limit: LimitOpt = 100,
    before: Annotated[
        str | None, typer.Option(metavar="ID", help="The next page: those after this one (the last shown).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Who was paged, on which channel, about which call or alert, and whether it went."""
    params = {"limit": limit, "call": call, "alert": alert, "status": status, "channel": channel}
    params["before"] = before
    with client(home) as c:
        rows = c.get("/notifications", params=params, expect=list)

    def render(items: list[dict[str, Any]]) -> None:
        if not items:
            out.print("No notifications.")
            return
        _table(items)
        limit_reached(len(items), limit, before_last(items))

    emit(rows, as_json, render, limit=limit)


@notify_app.command("test")
def notify_test(
    home: HomeOpt,
    targets: Annotated[
        list[str],
        typer.Argument(
            metavar="TARGET", help="As an escalation step names them: on_duty, webhook, role:R, user:U."
        ),
    ],
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for e-mail and webhooks to be sent (0: do not wait).")
    ] = 30.0,
    as_json: JsonOpt = False,
) -> None:
    """Send a test page the way a real one goes, and wait for the outcome.

    Waits for each e-mail's and webhook's first attempt. Exits 1 if any failed (it is
    retried as a real page would be) or was not tried within --wait."""
    if not 0 <= wait <= 600:
        fail(f"--wait must be 0 to 600 seconds, got {wait:g}", "invalid_input")
    with client(home) as c:
        rows = c.post("/notifications/test", json={"targets": targets})
        ids = {r["id"] for r in rows}
        deadline = time.monotonic() + wait
        while any(_untried(r) for r in rows) and time.monotonic() < deadline:
            time.sleep(WAIT_POLL_S)
            listed = c.get("/notifications", params={"limit": 1000}, expect=list)
            rows = sorted((r for r in listed if r["id"] in ids), key=lambda r: (r["recipient"], r["channel"]))
    emit(rows, as_json, _table)
    if not wait:
        return
    untried = sum(_untried(r) for r in rows)
    failed = sum(r["status"] != "sent" and not _untried(r) for r in rows)
    if not as_json and untried:
        out.print(f"{untried} not tried within {wait:g} s: see `openline notifications` later.")
    if untried or failed:
        raise typer.Exit(1)


def _untried(row: dict[str, Any]) -> bool:
    """Still pending, and no attempt has failed yet."""
    return bool(row["status"] == "pending" and not row["last_error"])
