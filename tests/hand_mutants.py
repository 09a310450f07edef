"""The hand-made bugs of issue #24, each applied to a scratch copy and shown to fail a test.

mutmut (tests/mutation.py) changes operators, numbers and strings one at a time; the bugs
people write are bigger: a whole check left out, a step skipped, a limit raised tenfold. The
ones that once passed the whole suite are listed here with the tests that now catch them.
`python -m tests.hand_mutants` applies each to a fresh copy of the working tree, runs its
tests there, and fails if any bug goes unnoticed (or no longer applies: the code moved on and
the entry must follow it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class HandMutant:
    name: str
    path: str
    old: str  # text that must occur exactly once in `path`
    new: str
    tests: tuple[str, ...]  # pytest node ids; at least one must fail


MUTANTS = (
    HandMutant(
        "claim_delivery ignores a live claim of another sender",
        "storage/jobs.py",
        "AND (delivery_owner IS NULL OR delivery_expires_at < ?) AND COALESCE(delivery_next_at, 0) <= ?\",\n"
        "        [worker_id, at + lease_seconds, at, job_id, at, at],",
        "AND COALESCE(delivery_next_at, 0) <= ?\",\n        [worker_id, at + lease_seconds, at, job_id, at],",
        ("tests/test_delivery_claims.py::test_a_live_claim_excludes_every_other_sender_until_its_last_instant",),
    ),
    HandMutant(
        "confirm_delivery accepts a sender that does not hold the claim",
        "storage/jobs.py",
        "\"updated_at = ? WHERE id = ? AND delivery_owner = ? AND delivered_at IS NULL\",\n"
        "        [at, at, job_id, worker_id],",
        "\"updated_at = ? WHERE id = ? AND delivered_at IS NULL\",\n        [at, at, job_id],",
        ("tests/test_delivery_claims.py::test_only_the_holder_of_the_claim_confirms_it",),
    ),
    HandMutant(
        "every still picture is refused as damaged",
        "bot/image_input.py",
        "    image = _exif_upright(image)\n",
        "    if not notes:\n        raise OSError('decoder error')\n    image = _exif_upright(image)\n",
        ("tests/test_fuzz_image_loader.py::test_well_formed_pictures_in_any_mode_load_unless_too_small_or_thin",),
    ),
    HandMutant(
        "a TypeError in our own code for every picture (the loader reports it as damaged)",
        "bot/image_input.py",
        "    rgba = _to_rgba(image)\n",
        "    rgba = _to_rgba(image, None)\n",
        ("tests/test_fuzz_image_loader.py::test_well_formed_pictures_in_any_mode_load_unless_too_small_or_thin",),
    ),
    HandMutant(
        "random bytes are called damaged instead of not a picture",
        "bot/image_input.py",
        "            raise UserError(NOT_AN_IMAGE, code=\"not_an_image\") from None",
        "            raise UserError(DAMAGED, code=\"damaged_image\") from None",
        ("tests/test_image_input.py::test_random_bytes_are_refused_as_not_a_picture",),
    ),
    HandMutant(
        "Telegram /forget confirmations never expire",
        "adapters/telegram/handlers.py",
        "    if confirmations.expired(int(until), d.clock()):\n",
        "    if False:\n",
        ("tests/test_telegram_adapter.py::test_a_forget_confirmation_expires_after_ten_minutes_for_its_owner_too",),
    ),
    HandMutant(
        "Discord /forget confirmations never expire",
        "adapters/discord/buttons.py",
        "        if confirmations.expired(self.until, deps(interaction).clock()):\n",
        "        if False:\n",
        ("tests/test_discord_adapter.py::test_a_forget_confirmation_expires_after_ten_minutes",),
    ),
    HandMutant(
        "/forget outside a transaction",
        "storage/forget.py",
        "    with immediate_transaction(db):\n",
        "    if True:\n",
        ("tests/test_storage_data.py::test_forget_is_one_transaction_a_failure_midway_deletes_nothing",),
    ),
    HandMutant(
        "one pace for every private chat (a busy chat holds up the others)",
        "adapters/telegram/pacing.py",
        "        limiter = self._chat_limiters.get(chat_id)\n",
        "        chat_id = 1\n        limiter = self._chat_limiters.get(chat_id)\n",
        ("tests/test_telegram_adapter.py::test_a_chat_held_back_by_its_pace_does_not_hold_up_another_chat",),
    ),
    HandMutant(
        "the runtime accepts any non-empty X-Seal-Secret",
        "seal_runtime/server.py",
        'or secret_matches(given, secret)',
        'or bool(given)',
        ("tests/test_runtime_secret.py::test_every_wrong_secret_is_refused_401_before_the_engine_sees_the_job",),
    ),
)


def scratch_copy(target: Path) -> None:
    """The working tree as git sees it (tracked and new files, nothing ignored)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def apply(mutant: HandMutant, tree: Path) -> None:
    path = tree / mutant.path
    text = path.read_text()
    if text.count(mutant.old) != 1:
        raise LookupError(f"{mutant.path}: the text to change occurs {text.count(mutant.old)} times, not once")
    path.write_text(text.replace(mutant.old, mutant.new))


def run(mutant: HandMutant) -> tuple[str, float]:
    """'caught', 'MISSED' or 'STALE: why', and the seconds it took."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hand-mutant-") as folder:
        tree = Path(folder)
        scratch_copy(tree)
        try:
            apply(mutant, tree)
        except LookupError as exc:
            return f"STALE: {exc}", time.monotonic() - started
        env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
        done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutant.tests],
                              cwd=tree, env=env, capture_output=True, text=True, check=False)
    if done.returncode == 1:
        return "caught", time.monotonic() - started
    if done.returncode == 0:
        return "MISSED", time.monotonic() - started
    return f"STALE: pytest exit {done.returncode}: {done.stdout[-500:]}", time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.hand_mutants", description=__doc__.split("\n")[0])
    parser.add_argument("-k", default="", help="only the bugs whose name contains this")
    args = parser.parse_args(argv)
    failures = 0
    for mutant in MUTANTS:
        if args.k not in mutant.name:
            continue
        verdict, seconds = run(mutant)
        failures += verdict != "caught"
        print(f"{verdict:>8}  {seconds:5.1f} s  {mutant.name}  <- {', '.join(t.split('::')[-1] for t in mutant.tests)}",
              flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
