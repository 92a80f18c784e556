"""Polled fragments (ED board every 30 s, radiology worklist every 2 s) are audited once per user
per window or when what they show changes, not on every poll; the full page is always audited."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from medbrain.api.app import create_app
from medbrain.api.poll_audit import PollAuditMemory
from medbrain.api.security import hash_password, issue_token
from medbrain.audit.verify import verify
from medbrain.core.config import Settings
from medbrain.store.models import AuditEntry, User


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class World:
    def __init__(self, client: TestClient, app: Any, tokens: dict[str, str]) -> None:
        self.client, self.app, self.tokens = client, app, tokens
        self.clock = Clock()
        app.state.poll_audit = PollAuditMemory(window_seconds=600, clock=self.clock)

    def as_user(self, role: str) -> TestClient:
        self.client.cookies.set("medbrain_session", self.tokens[f"{role}_cookie"])
        return self.client

    def reads(self, action: str) -> list[tuple[str, dict[str, Any]]]:
        with self.app.state.session_factory() as session:
            rows = session.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
            ).all()
            return [(r.who, r.detail) for r in rows]


@pytest.fixture
def world(sqlite_url: str, tmp_path: Path) -> Iterator[World]:
    app = create_app(Settings(home=tmp_path, database_url=sqlite_url))
    now = datetime.now(UTC)
    tokens: dict[str, str] = {}
    with app.state.session_factory() as session, session.begin():
        for role in ("nurse", "doctor", "radiologist"):
            user = User(
                username=f"u_{role}",
                display_name=role,
                role=role,
                password_hash=hash_password("pw-for-tests"),
            )
            session.add(user)
            session.flush()
            tokens[role] = issue_token(session, user, "api", timedelta(hours=1), now).token
            tokens[f"{role}_cookie"] = issue_token(
                session, user, "cookie", timedelta(hours=1), now
            ).token
    with TestClient(app) as client:
        yield World(client, app, tokens)


def _arrival(world: World, label: str) -> None:
    door = datetime.now(UTC) - timedelta(minutes=5)
    created = world.client.post(
        "/api/v1/ed/visits",
        json={
            "visit": {
                "age_years": 40,
                "sex": "female",
                "complaint": "腹痛半天",
                "vitals": {"hr": 88, "sbp": 124, "rr": 16, "spo2": 98, "temp_c": 36.8},
            },
            "label": label,
            "door_at": door.isoformat(),
        },
        headers={"Authorization": f"Bearer {world.tokens['nurse']}"},
    )
    assert created.status_code == 201, created.text


def test_ed_board_polls_add_one_entry_per_window_or_change(world: World) -> None:
    nurse = world.as_user("nurse")
    assert nurse.get("/ed").status_code == 200
    assert [(w, d["via"]) for w, d in world.reads("ed.board.read")] == [("u_nurse", "page")]
    for _ in range(5):  # 2.5 minutes of polling, the same board: nothing more written
        world.clock.now += 30
        assert nurse.get("/ed/board").status_code == 200
    assert len(world.reads("ed.board.read")) == 1

    _arrival(world, "床1")  # a new patient on the board: the next poll is audited, once
    assert "床1" in nurse.get("/ed/board").text
    nurse.get("/ed/board")
    reads = world.reads("ed.board.read")
    assert len(reads) == 2 and reads[-1][1]["via"] == "poll" and reads[-1][1]["visits"] == 1
    assert reads[-1][1]["poll_window_s"] == 600

    world.clock.now += 601  # the window has passed: one more entry, then quiet again
    nurse.get("/ed/board")
    nurse.get("/ed/board")
    assert len(world.reads("ed.board.read")) == 3

    doctor = world.as_user("doctor")  # another user is audited on his own first poll
    doctor.get("/ed/board")
    doctor.get("/ed/board")
    assert [w for w, _d in world.reads("ed.board.read")].count("u_doctor") == 1

    nurse = world.as_user("nurse")  # reloading the page is always audited
    nurse.get("/ed")
    nurse.get("/ed")
    assert len(world.reads("ed.board.read")) == 6
    with world.app.state.session_factory() as session:
        assert verify(session, None).ok


def test_radiology_worklist_rows_are_audited_but_not_every_poll(world: World) -> None:
    rad = world.as_user("radiologist")
    assert rad.get("/radiology").status_code == 200
    for _ in range(10):  # 20 s of polling every 2 s
        world.clock.now += 2
        assert rad.get("/radiology/worklist/rows").status_code == 200
    reads = world.reads("radiology.worklist.read")
    assert [d["via"] for _w, d in reads] == ["page"]
    world.clock.now += 601
    rad.get("/radiology/worklist/rows")
    assert [d["via"] for _w, d in world.reads("radiology.worklist.read")] == ["page", "poll"]


def test_memory_forgets_stale_users_and_reaudits_changed_content() -> None:
    clock = Clock()
    memory = PollAuditMemory(window_seconds=60, clock=clock)
    assert memory.due("a", "x.read", "X", "d1")
    assert not memory.due("a", "x.read", "X", "d1")
    assert memory.due("a", "x.read", "X", "d2")  # content changed
    assert memory.due("a", "x.read", "X", "d2", force=True)  # the page itself
    clock.now += 61
    assert memory.due("a", "x.read", "X", "d2")
    memory.forget("a", "x.read", "X")  # the entry could not be written: retried next poll
    assert memory.due("a", "x.read", "X", "d2")
