"""The hand-made bugs of issue #24, each applied to a scratch copy and shown to fail a test.

mutmut (tests/mutation.py) changes operators, numbers and strings one at a time; the bugs
people write are bigger: a whole check left out, a step skipped, a limit raised tenfold. The
ones that once passed the whole suite are listed here with the tests that now catch them.
`python -m tests.hand_mutants` first runs every guarding test on a fresh copy of the working
tree as it is (each must pass there), then applies each bug to a fresh copy, runs its tests
there, and fails if any bug goes unnoticed (or no longer applies: the code moved on and the
entry must follow it).
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
        "storage/deliveries.py",
        "AND (delivery_owner IS NULL OR delivery_expires_at < ?) AND COALESCE(delivery_next_at, 0) <= ?\",\n"
        "        [worker_id, at + lease_seconds, at, job_id, at, at],",
        "AND COALESCE(delivery_next_at, 0) <= ?\",\n        [worker_id, at + lease_seconds, at, job_id, at],",
        ("tests/test_delivery_claims.py::test_a_live_claim_excludes_every_other_sender_until_its_last_instant",),
    ),
    HandMutant(
        "confirm_delivery accepts a sender that does not hold the claim",
        "storage/deliveries.py",
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
        "            raise UserError(_(NOT_AN_IMAGE), code=\"not_an_image\") from None",
        "            raise UserError(_(DAMAGED), code=\"damaged_image\") from None",
        ("tests/test_image_input.py::test_random_bytes_are_refused_as_not_a_picture",),
    ),
    HandMutant(
        "Telegram /forget confirmations never expire",
        "adapters/telegram/handlers/account.py",
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
        "the engine skips the cut-out (stickers stop being transparent)",
        "seal_runtime/engine.py",
        "    return png_bytes(prepare_sticker(median_filter(image, denoise_size), background=background,\n"
        "                                     look=look, masker=masker))\n",
        "    return png_bytes(median_filter(image, denoise_size))\n",
        ("tests/test_sticker_finish_cpu.py::test_the_measured_picture_is_really_cut_out",),
    ),
    HandMutant(
        "the cut-out's mask is not scaled back up for a picture over 1024 px",
        "seal_runtime/imaging/cutout.py",
        "    if hard.size != rgba.size:\n"
        "        hard = hard.resize(rgba.size, Image.Resampling.BILINEAR).point(lambda v: 255 if v >= 128 else 0)\n",
        "",
        ("tests/test_cutout.py::test_a_picture_over_the_work_side_is_cut_at_its_own_size_along_its_own_outline",),
    ),
    HandMutant(
        "Discord's message file cap raised from 8 MB to 80 MB",
        "bot/sticker_spec.py",
        '"discord_message", "WEBP", 512, False, 8_000_000,',
        '"discord_message", "WEBP", 512, False, 80_000_000,',
        ("tests/test_sticker_spec.py::test_every_spec_keeps_to_its_platforms_published_numbers",),
    ),
    HandMutant(
        "/setref decodes on the event loop (every chat waits while a big picture decodes)",
        "bot/service.py",
        "return self._save_reference(user, await self.images.run(self._decode, data))",
        "return self._save_reference(user, self._decode(data))",
        ("tests/test_setref_loop_lag.py::test_the_event_loop_keeps_answering_during_a_large_setref",),
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


@dataclass(frozen=True)
class Verdict:
    outcome: str  # "caught", "MISSED" or "STALE: why"
    seconds: float
    failed: str = ""  # the first test that failed
    reason: str = ""  # its first error line (pytest's "E   ...")


def pytest_in_copy(tests: list[str], mutant: HandMutant | None = None) -> subprocess.CompletedProcess:
    """Run `tests` in a fresh copy of the working tree, with `mutant` applied (LookupError if
    it no longer applies)."""
    with tempfile.TemporaryDirectory(prefix="hand-mutant-") as folder:
        tree = Path(folder)
        scratch_copy(tree)
        if mutant is not None:
            apply(mutant, tree)
        env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
        return subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                               cwd=tree, env=env, capture_output=True, text=True, check=False)


def control(mutants: list[HandMutant]) -> str:
    """The guarding tests on the unchanged code: each must pass there, or its failure under a
    mutant says nothing about the mutant (a test broken by something else "catches" every bug)."""
    done = pytest_in_copy(sorted({test for mutant in mutants for test in mutant.tests}))
    return "" if done.returncode == 0 else "the guarding tests fail WITHOUT any bug:\n" + done.stdout[-2000:]


def run(mutant: HandMutant) -> Verdict:
    started = time.monotonic()
    try:
        done = pytest_in_copy(list(mutant.tests), mutant)
    except LookupError as exc:
        return Verdict(f"STALE: {exc}", time.monotonic() - started)
    seconds = time.monotonic() - started
    if done.returncode == 1:
        return Verdict("caught", seconds, *first_failure(done.stdout))
    if done.returncode == 0:
        return Verdict("MISSED", seconds)
    return Verdict(f"STALE: pytest exit {done.returncode}: {done.stdout[-500:]}", seconds)


def first_failure(output: str) -> tuple[str, str]:
    """The first failed test's name and its first error line, from pytest's -q output."""
    failed = next((line.split()[1] for line in output.splitlines() if line.startswith("FAILED ")), "")
    reason = next((line[1:].strip() for line in output.splitlines() if line.startswith("E ")), "")
    return failed.split("::")[-1], reason[:160]


def markdown(rows: list[tuple[HandMutant, Verdict]]) -> str:
    lines = ["| hand-made bug | in | failing test | how it fails |", "| --- | --- | --- | --- |"]
    for mutant, verdict in rows:
        how = verdict.reason.replace("|", "\\|") if verdict.outcome == "caught" else verdict.outcome
        lines.append(f"| {mutant.name} | `{mutant.path}` | `{verdict.failed or mutant.tests[0].split('::')[-1]}` "
                     f"| {how} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.hand_mutants", description=__doc__.split("\n")[0])
    parser.add_argument("-k", default="", help="only the bugs whose name contains this")
    parser.add_argument("--markdown", action="store_true", help="end with the evidence table (docs/mutation.md)")
    args = parser.parse_args(argv)
    chosen = [mutant for mutant in MUTANTS if args.k in mutant.name]
    started = time.monotonic()
    broken = control(chosen)
    if broken:
        print(broken)
        return 1
    print(f"  passes  {time.monotonic() - started:5.1f} s  every guarding test, on the code without a bug", flush=True)
    rows = []
    for mutant in chosen:
        verdict = run(mutant)
        rows.append((mutant, verdict))
        print(f"{verdict.outcome:>8}  {verdict.seconds:5.1f} s  {mutant.name}  <- {verdict.failed or mutant.tests[0]}"
              f"{': ' + verdict.reason if verdict.reason else ''}", flush=True)
    if args.markdown:
        print("\n" + markdown(rows))
    return 1 if any(verdict.outcome != "caught" for _, verdict in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
