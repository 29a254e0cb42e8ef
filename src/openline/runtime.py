"""Assemble a running station from its settings: keys, database, card, workers."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass

from openline.adapters.db import Checkpointer, Database
from openline.adapters.home import load_keys
from openline.adapters.migrate import open_station
from openline.adapters.notify import Channel, SmtpChannel, WebhookChannel
from openline.adapters.transport import HttpTransport, Transport
from openline.core.card import make_card
from openline.core.clock import Clock, StepWatch, SystemClock
from openline.core.keys import StationKeys
from openline.services.delivery import Deliverer
from openline.services.ledger_worker import GATHER_SECONDS, LedgerWorker
from openline.services.notifier import Notifier, lanes
from openline.services.station import NotifyConfig, Station, Tx
from openline.services.timers import Auditor, TimerLoop
from openline.settings import Settings


def build_station(
    settings: Settings,
    *,
    clock: Clock | None = None,
    db: Database | None = None,
    keys: StationKeys | None = None,
) -> Station:
    """The station of `settings`, over `db` or else its own database, which must hold the
    station (`open_station`), with `keys` or else those in its home."""
    keys = keys if keys is not None else load_keys(settings.home)
    return Station(
        name=settings.name,
        keys=keys,
        card=make_card(keys, settings.name, [settings.url], settings.languages),
        db=db or open_station(settings.effective_database_url),
        clock=clock or SystemClock(),
        answer_deadline_s=settings.answer_deadline_s,
        line_down_after_s=settings.line_down_after_s,
        line_check_s=settings.line_check_s,
        clock_skew_alert_s=settings.clock_skew_alert_s,
        notify=NotifyConfig(
            webhook_urls=tuple(settings.webhook_urls),
            email=settings.smtp_host is not None,
            console_url=settings.console_url,
        ),
        time_zone=settings.time_zone,
    )


@dataclass
class Workers:
    """The background work of `openline serve`: deliverers and the timer loop."""

    station: Station
    transport: Transport
    channels: tuple[Channel, ...] = ()

    def __post_init__(self) -> None:
        self.notifiers = [
            Notifier(self.station, channel, lane, n)
            for channel in self.channels
            for n, lane in enumerate(lanes(channel, self.station.notify.webhook_urls))
        ]
        self.deliverer = Deliverer(self.station, self.transport)
        system = isinstance(self.station.clock, SystemClock)
        self.timers = TimerLoop(self.station, StepWatch() if system else None)
        self.auditor = Auditor(self.station)
        self.ledger = LedgerWorker(self.station, self.transport)
        db = self.station.db
        self.checkpointer = Checkpointer(db) if db.background_checkpoints else None
        self.station.on_commit.append(self._after_commit)

    def _after_commit(self, tx: Tx) -> None:
        if tx.ledger_grew:  # entries gather for a moment before they are sequenced
            self.ledger.wake_within(GATHER_SECONDS)
        if tx.wake_lines:
            self.deliverer.wake(tx.wake_lines)
        if tx.queued_lines:  # a line also in wake_lines has been woken just above
            self.deliverer.wake(tx.queued_lines, queued=True)
        if tx.new_deadline:  # otherwise the loop's own schedule already covers it
            self.timers.wake()
            for notifier in self.notifiers:  # an escalation step may have queued some
                notifier.wake()

    def start(self) -> None:
        self.deliverer.start()
        self.timers.start()
        self.auditor.start()
        self.ledger.start()
        for notifier in self.notifiers:
            notifier.start()
        if self.checkpointer is not None:
            self.checkpointer.start()

    def stop(self) -> None:
        """Stop each worker after its current step, then close the transport: every one of
        them, whatever became of the others (an error is raised once all have been told)."""
        with ExitStack() as stack:  # its callbacks run last in, first out
            stack.callback(self.transport.close)
            if self.checkpointer is not None:
                stack.callback(self.checkpointer.stop)
            for notifier in reversed(self.notifiers):
                stack.callback(notifier.stop)
            stack.callback(self.ledger.stop)
            stack.callback(self.auditor.stop)
            stack.callback(self.timers.stop)
            stack.callback(self.deliverer.stop)


def default_transport(station: Station) -> Transport:
    return HttpTransport(station.keys, station.name)


def channels_from(settings: Settings) -> tuple[Channel, ...]:
    """The notification channels the settings configure (the console needs none)."""
    out: list[Channel] = []
    if settings.webhook_urls and settings.webhook_secret:
        out.append(WebhookChannel(settings.webhook_secret))
    if settings.smtp_host and settings.smtp_from:
        out.append(
            SmtpChannel(
                settings.smtp_host,
                settings.smtp_port,
                settings.smtp_from,
                starttls=settings.smtp_starttls,
                username=settings.smtp_username,
                password=settings.smtp_password,
            )
        )
    return tuple(out)
