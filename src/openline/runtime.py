"""Assemble a running station from its settings: keys, database, card, workers."""

from __future__ import annotations

from dataclasses import dataclass

from openline.adapters.db import Checkpointer, Database
from openline.adapters.home import load_keys
from openline.adapters.transport import HttpTransport, Transport
from openline.core.card import make_card
from openline.core.clock import Clock, SystemClock
from openline.services.delivery import Deliverer
from openline.services.station import Station, Tx
from openline.services.timers import TimerLoop
from openline.settings import Settings


def build_station(settings: Settings, *, clock: Clock | None = None, db: Database | None = None) -> Station:
    keys = load_keys(settings.home)
    return Station(
        name=settings.name,
        keys=keys,
        card=make_card(keys, settings.name, [settings.url], settings.languages),
        db=db or Database(settings.effective_database_url),
        clock=clock or SystemClock(),
        answer_deadline_s=settings.answer_deadline_s,
    )


@dataclass
class Workers:
    """The background work of `openline serve`: deliverers and the timer loop."""

    station: Station
    transport: Transport

    def __post_init__(self) -> None:
        self.deliverer = Deliverer(self.station, self.transport)
        self.timers = TimerLoop(self.station)
        db = self.station.db
        self.checkpointer = Checkpointer(db) if db.background_checkpoints else None
        self.station.on_commit.append(self._after_commit)

    def _after_commit(self, tx: Tx) -> None:
        if tx.wake_lines:
            self.deliverer.wake(tx.wake_lines)
        if tx.new_deadline:  # otherwise the loop's own schedule already covers it
            self.timers.wake()

    def start(self) -> None:
        self.deliverer.start()
        self.timers.start()
        if self.checkpointer is not None:
            self.checkpointer.start()

    def stop(self) -> None:
        self.deliverer.stop()
        self.timers.stop()
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self.transport.close()


def default_transport(station: Station) -> Transport:
    return HttpTransport(station.keys, station.name)
