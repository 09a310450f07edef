"""Mutation testing of the modules that guard data, secrets and the sticker path (`make mutation`).

mutmut reads its configuration from the `pyproject.toml` of the folder it runs in and tests a
mutant with every test of its selection that calls the mutated function. Run once over all the
guarded modules, a mutant of the job queue would also be tested by the whole Telegram adapter
suite. So each group of `[tool.stickerbot-mutation.<group>]` runs in its own folder
(out/mutation/<group>: links to the project's folders and a pyproject.toml whose
`[tool.mutmut]` names only that group's modules and tests), and the results are read back from
mutmut's own records (mutants/**.meta).

A surviving mutant that cannot be killed is listed in docs/mutation.md, under "Equivalent
mutants", as a line  - `<mutant name>` `<the mutated line>`: <why no test can tell>
The mutated line is checked against the mutant's diff, so an entry whose mutant changed number
after an edit of the module stops counting (it is reported as stale).

    python -m tests.mutation                  every group
    python -m tests.mutation storage_jobs     some groups
    python -m tests.mutation --changed BASE   the groups whose modules or tests changed since BASE
    python -m tests.mutation --changed auto   ... since this branch left main (on main: the last commit)
    python -m tests.mutation --changed auto --budget-min 12   ... those that fit 12 minutes (CI)
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "out" / "mutation"
EQUIVALENTS = ROOT / "docs" / "mutation.md"
TARGET = 90.0
# Not linked into a group's folder: build outputs and earlier mutation runs.
NOT_LINKED = {".git", ".venv", "out", "data", "mutants", ".pytest_cache", ".mypy_cache", ".ruff_cache", "bench-out"}
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout",
          24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", 37: "type check", None: "not checked"}


@dataclass(frozen=True)
class Group:
    name: str
    modules: tuple[str, ...]
    tests: tuple[str, ...]
    functions: tuple[str, ...] = ()  # mutant-name globs: only these functions of the modules
    minutes: float = 0.0  # how long its last full run took (2 loaded cores): what CI's budget reads

    def touched_by(self, paths: set[str]) -> bool:
        return any(path in paths for path in self.modules + self.tests)


@dataclass
class ModuleScore:
    module: str
    status: dict[str, str] = field(default_factory=dict)  # mutant name -> status
    equivalent: set[str] = field(default_factory=set)
    sql_case: set[str] = field(default_factory=set)  # equivalent by the SQL-case rule (sql_case_only)

    def count(self, *states: str) -> int:
        return sum(1 for name, state in self.status.items() if state in states and name not in self.equivalent)

    @property
    def killed(self) -> int:
        return self.count("killed", "timeout", "type check")

    @property
    def judged(self) -> int:
        return len(self.status) - len(self.equivalent)

    @property
    def score(self) -> float:
        return 100.0 * self.killed / self.judged if self.judged else 100.0


def group_table(text: str) -> dict[str, dict]:
    """The [tool.stickerbot-mutation] tables of a pyproject.toml's text ({} when it has none)."""
    return tomllib.loads(text).get("tool", {}).get("stickerbot-mutation", {})


def load_groups(pyproject: Path = ROOT / "pyproject.toml") -> list[Group]:
    return [Group(name, tuple(spec["modules"]), tuple(spec["tests"]), tuple(spec.get("functions", ())),
                  float(spec.get("minutes", 0.0)))
            for name, spec in group_table(pyproject.read_text()).items()]


# When the runner itself changed, this (small) group shows that it still runs and scores.
RUNNER_CHECK = "runtime_secret"


def changed_groups(groups: list[Group], paths: set[str], old_table: dict[str, dict],
                   new_table: dict[str, dict]) -> list[Group]:
    """The groups a change can have moved the score of: their modules or tests changed, or their
    own table did (a re-measured `minutes` aside); plus RUNNER_CHECK when the runner changed.
    Groups whose modules changed come first, then by size (cheapest first)."""
    def spec(table: dict) -> dict:
        return {key: value for key, value in table.items() if key != "minutes"}

    by_name = {g.name: g for g in groups}
    chosen = [g for g in groups if g.touched_by(paths) or spec(old_table.get(g.name, {})) != spec(new_table[g.name])]
    if "tests/mutation.py" in paths and RUNNER_CHECK in by_name and by_name[RUNNER_CHECK] not in chosen:
        chosen.append(by_name[RUNNER_CHECK])
    return sorted(chosen, key=lambda g: (not any(m in paths for m in g.modules), g.minutes))


def within_budget(groups: list[Group], minutes: float) -> tuple[list[Group], list[Group]]:
    """The groups that fit `minutes` by their last measured length, in order, and the rest."""
    kept, left, used = [], [], 0.0
    for group in groups:
        if used + group.minutes <= minutes:
            kept.append(group)
            used += group.minutes
        else:
            left.append(group)
    return kept, left


def load_equivalents(path: Path = EQUIVALENTS) -> dict[str, str]:
    """mutant name -> the mutated line as docs/mutation.md quotes it."""
    if not path.exists():
        return {}
    entry = re.compile(r"^\s*-\s+`(?P<name>[^`]+__mutmut_\d+)`\s+`(?P<line>[^`]*)`\s*:")
    return {m["name"]: m["line"] for m in map(entry.match, path.read_text().splitlines()) if m}


def mutmut_section(group: Group) -> str:
    """The `[tool.mutmut]` table for one group (TOML arrays of plain strings read as JSON)."""
    sources = sorted({module.split("/")[0] + "/" for module in group.modules})
    copied = [p for p in ("bot/", "storage/", "seal_runtime/", "adapters/", "benchmarks/", "stickerworld/",
                          "docs/", "deploy/") if p not in sources]
    lines = {
        "source_paths": sources,
        "only_mutate": list(group.modules),
        "also_copy": copied + ["README.md", "Makefile"],
        "pytest_add_cli_args_test_selection": list(group.tests),
        # Mutants are judged by the fast tests: a slow end-to-end test (marked slow) would be run
        # for every mutant of every function it touches; the suite still runs it.
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-m", "not slow"],
        # Forked straight from mutmut's process, which has run torch code, a worker can hang
        # for good on a lock of torch's thread pool: fork from a server that only imported.
        "process_isolation": "forkserver",
    }
    return "[tool.mutmut]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in lines.items())


def group_pyproject(group: Group, text: str) -> str:
    """The project's pyproject.toml with its [tool.mutmut] replaced by the group's and the
    group tables dropped (pytest reads the rest: asyncio mode, markers, warnings)."""
    kept, skipping = [], False
    for line in text.splitlines():
        header = re.match(r"^\[([^\]]+)\]\s*$", line)
        if header:
            skipping = header[1] == "tool.mutmut" or header[1].startswith("tool.stickerbot-mutation")
        if not skipping:
            kept.append(line)
    return "\n".join(kept).rstrip() + "\n\n" + mutmut_section(group)


def prepare(group: Group) -> Path:
    folder = WORK / group.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for entry in ROOT.iterdir():
        if entry.name in NOT_LINKED or entry.name == "pyproject.toml" or entry.name.endswith(".egg-info"):
            continue
        (folder / entry.name).symlink_to(entry)
    (folder / "pyproject.toml").write_text(group_pyproject(group, (ROOT / "pyproject.toml").read_text()))
    # It must exist before mutmut starts: it is on PYTHONPATH (see run_group), and Python skips
    # for good a path entry that was not a folder when first looked at.
    (folder / "mutants").mkdir()
    return folder


def mutmut_command() -> list[str]:
    installed = Path(sys.executable).with_name("mutmut")
    return [str(installed)] if installed.exists() else [sys.executable, "-m", "mutmut"]


def run_group(group: Group, jobs: int) -> float:
    folder = prepare(group)
    env = dict(os.environ)
    # A test that starts a Python child (the runtime, the CLI) must import the mutated code too;
    # the child inherits MUTANT_UNDER_TEST from the worker.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder / "mutants"), env.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", "1")
    env["STICKERBOT_MUTATION"] = "1"  # tests/conftest.py: property tests without a shared example database
    command = mutmut_command() + ["run", "--max-children", str(jobs)]
    started = time.monotonic()
    with open(folder / "mutmut.log", "w") as log:
        # Its own process group, so that an interrupted run leaves no mutmut worker behind.
        child = subprocess.Popen(command + list(group.functions), cwd=folder, env=env, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        try:
            returncode = child.wait()
        except BaseException:
            os.killpg(child.pid, signal.SIGTERM)
            child.wait()
            raise
    elapsed = time.monotonic() - started
    if returncode != 0:
        tail = (folder / "mutmut.log").read_text(errors="replace")[-3000:]
        raise SystemExit(f"mutmut failed on group {group.name} (exit {returncode}):\n{tail}")
    return elapsed


def module_name(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def read_scores(group: Group, equivalents: dict[str, str]) -> tuple[list[ModuleScore], list[str]]:
    folder = WORK / group.name
    scores, stale = [], []
    for module in group.modules:
        meta_path = folder / "mutants" / f"{module}.meta"
        if not meta_path.exists():
            raise SystemExit(f"mutation: no results for {module}: run `python -m tests.mutation {group.name}`")
        meta = json.loads(meta_path.read_text())
        score = ModuleScore(module)
        for name, code in meta["exit_code_by_key"].items():
            if group.functions and not any(fnmatch.fnmatch(name, glob) for glob in group.functions):
                continue
            score.status[name] = STATUS.get(code, "suspicious")
        for name, state in score.status.items():
            # Only storage/ writes SQL (the layers' rule), and there string literals are SQL.
            if module.startswith("storage/") and state == "survived" and sql_case_only(diff(group, name)):
                score.equivalent.add(name)
                score.sql_case.add(name)
        for name, line in equivalents.items():
            if not name.startswith(module_name(module) + "."):
                continue
            if group.functions and not any(fnmatch.fnmatch(name, glob) for glob in group.functions):
                continue  # a run of some functions only: the others' entries are not its business
            if score.status.get(name) != "survived":
                stale.append(f"{name}: listed as equivalent but {score.status.get(name, 'no such mutant')}")
            elif line.strip() not in diff(group, name):
                stale.append(f"{name}: listed as equivalent for `{line}`, which its diff no longer shows")
            else:
                score.equivalent.add(name)
        scores.append(score)
    return scores, stale


def diff(group: Group, name: str) -> str:
    """mutmut's own diff of one mutant (read in this process: `mutmut show` costs a second each)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    module = next(m for m in group.modules if name.startswith(module_name(m) + "."))
    with contextlib.chdir(WORK / group.name):
        return get_diff_for_mutant(name, path=module)


SQL_WORDS = re.compile(r"\b(SELECT|UPDATE|INSERT|DELETE|WHERE|SET|FROM|AND|OR|NULL|ORDER BY|VALUES|MAX|COALESCE|"
                       r"COUNT|LIMIT|IS|IN)\b", re.IGNORECASE)


def sql_case_only(change: str) -> bool:
    """Is this mutant only a change of letter case in SQL, outside its quoted literals?

    SQLite reads keywords, table and column names without regard to case, so such a mutant
    is equivalent; a quoted literal ('queued' -> 'QUEUED') is a value, and does count."""
    removed = [line[1:] for line in change.splitlines() if line.startswith("-") and not line.startswith("---")]
    added = [line[1:] for line in change.splitlines() if line.startswith("+") and not line.startswith("+++")]
    if not removed or len(removed) != len(added):
        return False
    for old, new in zip(removed, added):
        if old == new or old.lower() != new.lower() or not SQL_WORDS.search(old):
            return False
        if re.findall(r"'[^']*'", old) != re.findall(r"'[^']*'", new):
            return False
    return True


def git(*args: str) -> str | None:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def automatic_base() -> str | None:
    """Where this branch left main (origin/main or main), or, on main itself, the commit before
    the last one; None when there is no such commit (a shallow clone of one commit)."""
    head = git("rev-parse", "HEAD")
    for main in ("origin/main", "main"):
        fork = git("merge-base", "HEAD", main)
        if fork and fork != head:
            return fork
    return git("rev-parse", "--verify", "-q", "HEAD~1")


def changed_paths(base: str) -> set[str]:
    """Files that differ from `base`, committed or not."""
    listings = [git("diff", "--name-only", f"{base}...HEAD"), git("diff", "--name-only", "HEAD"),
                git("ls-files", "--others", "--exclude-standard")]
    if listings[0] is None:
        raise SystemExit(f"mutation: git cannot compare with {base!r}")
    return {name for listing in listings for name in (listing or "").split()}


def changed_lines(base: str, path: str) -> set[int] | None:
    """Line numbers of `path` (as it is now) that differ from `base`, committed or not; None
    when git cannot tell."""
    lines: set[int] = set()
    for args in ((f"{base}...HEAD",), ("HEAD",)):
        diff = git("diff", "-U0", *args, "--", path)
        if diff is None:
            return None
        for start, count in re.findall(r"^@@ -\S+ \+(\d+)(?:,(\d+))? @@", diff, re.MULTILINE):
            first, n = int(start), int(count) if count else 1
            lines.update(range(first, first + max(n, 1)))  # a deletion touches the line it left
    return lines


def function_globs(path: str, lines: set[int], source: str | None = None) -> dict[str, int] | None:
    """mutmut's names (as globs) of the functions and methods of `path` that hold one of
    `lines`, each with its length in lines; None when a changed line is outside every function
    (a constant, an import: any function may read it)."""
    import ast

    def span(node) -> tuple[int, int]:  # a decorator's lines belong to its function
        return min([node.lineno] + [d.lineno for d in node.decorator_list]), node.end_lineno or node.lineno

    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    spans: list[tuple[int, int, str]] = []
    for node in ast.parse((ROOT / path).read_text() if source is None else source).body:
        if isinstance(node, functions):
            spans.append((*span(node), f"x_{node.name}"))
        elif isinstance(node, ast.ClassDef):
            spans += [(*span(item), f"x\u01c1{node.name}\u01c1{item.name}") for item in node.body
                      if isinstance(item, functions)]
    chosen: dict[str, int] = {}
    for line in lines:
        owners = [(name, end - start + 1) for start, end, name in spans if start <= line <= end]
        if not owners:
            return None
        chosen.update(owners)
    return {f"{module_name(path)}.{name}__mutmut_*": size for name, size in sorted(chosen.items())}


def narrowed(group: Group, base: str) -> Group | None:
    """The group cut down to the functions of its modules that changed since `base` (a run that
    fits where the whole group does not), or None when that cannot be told: a test, the table or
    a line outside any function changed."""
    globs: dict[str, int] = {}
    total = 0
    for module in group.modules:
        lines = changed_lines(base, module)
        if lines is None:
            return None
        found = function_globs(module, lines) if lines else {}
        if found is None:
            return None
        globs.update(found)
        total += len((ROOT / module).read_text().splitlines())
    if group.functions:  # keep to the group's own choice of functions
        globs = {g: n for g, n in globs.items() if any(fnmatch.fnmatch(g.replace("*", "1"), own)
                                                       for own in group.functions)}
    if not globs:
        return None
    # Its time: the group's, in proportion to the lines mutated, plus a minute of mutmut's setup.
    minutes = 1.0 + group.minutes * sum(globs.values()) / max(1, total)
    return replace(group, functions=tuple(globs), minutes=round(minutes, 1))


def table(scores: list[ModuleScore]) -> str:
    rows = ["| module | mutants | killed | survived | no tests | equivalent | score |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for s in scores:
        rows.append(f"| `{s.module}` | {len(s.status)} | {s.killed} | {s.count('survived', 'suspicious')} | "
                    f"{s.count('no tests', 'not checked')} | {len(s.equivalent)} | {s.score:.1f} % |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__.split("\n")[0])
    parser.add_argument("groups", nargs="*", help="group names (default: all)")
    parser.add_argument("--changed", metavar="BASE",
                        help="only groups whose modules or tests differ from BASE (a commit, or auto)")
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("MUTATION_JOBS", "2")))
    parser.add_argument("--report", action="store_true", help="read the last run's results, run nothing")
    parser.add_argument("--budget-min", type=float, metavar="M",
                        help="run only the groups that fit M minutes by their measured `minutes` (CI)")
    args = parser.parse_args(argv)

    groups = load_groups()
    unknown = set(args.groups) - {g.name for g in groups}
    if unknown:
        parser.error(f"unknown groups: {', '.join(sorted(unknown))}; known: {', '.join(g.name for g in groups)}")
    if args.groups:
        groups = [g for g in groups if g.name in args.groups]
    base = None
    if args.changed:
        base = automatic_base() if args.changed == "auto" else args.changed
        if base is None:
            print("mutation: no commit to compare with: every group runs")
        else:
            old_text = git("show", f"{base}:pyproject.toml")
            groups = changed_groups(groups, changed_paths(base), group_table(old_text) if old_text else {},
                                    group_table((ROOT / "pyproject.toml").read_text()))
            print(f"mutation: changed since {base[:12]}: {', '.join(g.name for g in groups) or 'no group'}")
    if args.budget_min is not None:
        groups, left = within_budget(groups, args.budget_min)
        if left and args.changed and base is not None:
            # Over the budget whole: the functions this change touched may still fit.
            cut = [n for n in (narrowed(g, base) for g in left) if n is not None]
            extra, _ = within_budget(cut, args.budget_min - sum(g.minutes for g in groups))
            for group in extra:
                print(f"mutation: {group.name} whole is over the budget: only the functions this change "
                      f"touched ({', '.join(group.functions)}), about {group.minutes:.0f} min")
            groups += extra
            left = [g for g in left if g.name not in {e.name for e in extra}]
        if left:
            print(f"mutation: over the {args.budget_min:.0f}-minute budget, not run here: "
                  f"{', '.join(g.name for g in left)} (run `make mutation`)")
    if not groups:
        return 0
    equivalents = load_equivalents()
    all_scores, problems, timings = [], [], {}
    for group in groups:
        if not args.report:
            print(f"mutation: {group.name}: {', '.join(group.modules)} against {len(group.tests)} test files",
                  flush=True)
            timings[group.name] = run_group(group, args.jobs)
        scores, stale = read_scores(group, equivalents)
        group_problems = list(stale)
        for s in scores:
            for name, state in sorted(s.status.items()):
                if state not in ("killed", "timeout", "type check") and name not in s.equivalent:
                    group_problems.append(f"{state}: {name}\n{diff(group, name)}")
        # Each group's own report stays next to its run; report.md is the last command's.
        (WORK / group.name / "report.md").write_text(table(scores) + "\n\n" + "\n\n".join(group_problems) + "\n")
        all_scores += scores
        problems += group_problems
        if group.name in timings:
            print(f"mutation: {group.name} took {timings[group.name]:.0f} s", flush=True)
    report = table(all_scores)
    print(report)
    (WORK / "report.md").parent.mkdir(parents=True, exist_ok=True)
    (WORK / "report.md").write_text(report + "\n\n" + "\n\n".join(problems) + "\n")
    if problems:
        print(f"\n{len(problems)} surviving or stale: see {WORK / 'report.md'}")
    low = [s.module for s in all_scores if s.score < TARGET]
    if low:
        print(f"mutation: below {TARGET:.0f} %: {', '.join(low)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
