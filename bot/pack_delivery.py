"""From a pack's sticker jobs to one finished pack for the adapter.

The JobWorker runs a pack's jobs (storage/pack_orders.py) like any other and hands their
progress and results to its sink. `PackAssembler` sits in front of the adapter's sink:

- a pack job's progress becomes the pack's: `ProgressEvent(stage="pack", step=done,
  total=size)`, shown when the count changes ("Drawing your pack: 7/12 stickers done…");
- a pack job's result (or final failure) is not sent on its own. When it is the last of its
  pack, the assembler takes the pack's delivery claim and calls the adapter's `deliver` once
  with a `JobView` whose `pack` is set and every sticker made, in pack order (or `failed`
  when none came out), then confirms the pack delivered.

A send that raises gives the claim back and raises on, so the worker retries that job's
delivery later (bounded, with backoff) and the pack with it; a crash before the confirmation
sends the pack again (the worker's documented at-least-once window). Any other job passes
straight through.
"""

from __future__ import annotations

import logging

import sqlite_utils

from bot.delivery import DeliverySink, sticker_out
from bot.messages import JobView, PackInfo, ProgressEvent, StickerOut
from storage import pack_orders, stickers
from storage.records import PackOrder

log = logging.getLogger(__name__)

KIND_MEMORY = 4096
NOTHING_MADE = (
    "Sorry, I could not make any sticker of your pack. Please try again later, or with other words "
    "or another picture (/setref)."
)


class PackAssembler:
    """A DeliverySink in front of `inner` (the adapter's sink) that assembles packs."""

    def __init__(
        self, db: sqlite_utils.Database, inner: DeliverySink, *, worker_id: str, lease_s: float = 300.0
    ) -> None:
        self.db = db
        self.inner = inner
        self.worker_id = worker_id
        self.lease_s = lease_s
        self._orders: dict[str, str | None] = {}  # job id -> its pack order id (None: not a pack job)
        self._shown: dict[str, int] = {}  # pack order id -> the count last shown

    # -- the DeliverySink protocol ---------------------------------------------------------
    async def progress(self, job: JobView, update: ProgressEvent) -> None:
        order = self._order_of(job.job_id)
        if order is None:
            await self.inner.progress(job, update)
            return
        done = self._made(order)
        if self._shown.get(order.id) == done:
            return
        self._shown[order.id] = done
        await self.inner.progress(self._pack_view(job, order, done), ProgressEvent(order.id, "pack", done, order.size))

    async def deliver(self, job: JobView, out: list[StickerOut]) -> None:
        order = self._order_of(job.job_id)
        if order is None:
            await self.inner.deliver(job, out)
            return
        await self._member_finished(job, order)

    async def failed(self, job: JobView, message: str) -> None:
        order = self._order_of(job.job_id)
        if order is None:
            await self.inner.failed(job, message)
            return
        log.info("a pack sticker failed", extra={"job_id": job.job_id, "order_id": order.id})
        await self._member_finished(job, order)

    # -- packs -----------------------------------------------------------------------------
    async def _member_finished(self, job: JobView, order: PackOrder) -> None:
        members = pack_orders.member_jobs(self.db, order)
        if any(not m.finished for m in members):
            await self.progress(job, ProgressEvent(job.job_id, "pack"))
            return
        if not pack_orders.claim_delivery(self.db, order.id, self.worker_id, self.lease_s):
            return  # delivered already, or another worker is sending it right now
        out = [
            sticker_out(s, m.request)
            for m in members
            if m.state == "done"
            for s in stickers.stickers_for_job(self.db, order.user_id, m.id)
        ]
        view = self._pack_view(job, order, len(out))
        try:
            if out:
                await self.inner.deliver(view, out)
            else:
                await self.inner.failed(view, NOTHING_MADE)
        except BaseException:
            pack_orders.release_delivery(self.db, order.id, self.worker_id)
            raise
        pack_orders.confirm_delivery(self.db, order.id, self.worker_id, {"made": len(out), "size": order.size})
        self._shown.pop(order.id, None)
        log.info("pack delivered", extra={"order_id": order.id, "made": len(out), "size": order.size})

    def _order_of(self, job_id: str) -> PackOrder | None:
        if job_id not in self._orders:
            if len(self._orders) > KIND_MEMORY:
                self._orders.clear()
            row = self.db.execute(
                "SELECT kind, json_extract(request, '$.pack_order') FROM jobs WHERE id = ?", [job_id]
            ).fetchone()
            self._orders[job_id] = row[1] if row and row[0] == pack_orders.MEMBER_KIND else None
        order_id = self._orders[job_id]
        return pack_orders.get_order(self.db, order_id) if order_id else None

    def _made(self, order: PackOrder) -> int:
        return sum(1 for m in pack_orders.member_jobs(self.db, order) if m.state == "done")

    @staticmethod
    def _pack_view(job: JobView, order: PackOrder, made: int) -> JobView:
        return JobView(
            order.id,
            job.user,
            order.user_id,
            order.chat or job.chat,
            pack=PackInfo(order.id, order.size, made, order.words),
        )
