"""The mutation runner's own decisions (tests/mutation.py, tests/hand_mutants.py): what counts as
an equivalent mutant, which groups a change selects for CI, what fits CI's budget, and how a
group's folder is configured. Pure functions on written-out inputs; mutmut itself is not run."""

import tomllib

import pytest

from tests import hand_mutants, mutation
from tests.mutation import Group, ModuleScore

CASE_ONLY = '''--- storage/jobs.py
+++ storage/jobs.py
@@ -1,3 +1,3 @@
-    db.execute("UPDATE jobs SET state = 'queued' WHERE id = ?", [job_id])
+    db.execute("update jobs set state = 'queued' where id = ?", [job_id])
'''


def test_a_change_of_case_in_sql_keywords_and_names_is_equivalent():
    assert mutation.sql_case_only(CASE_ONLY)


@pytest.mark.parametrize("change", [
    CASE_ONLY.replace("'queued' where", "'QUEUED' where"),  # a value: SQLite compares it as written
    CASE_ONLY.replace('+    db.execute("update', '+    db.execute("XXupdate'),  # not only case
    "--- a\n+++ b\n-    name = \"Ann\"\n+    name = \"ann\"\n",  # no SQL in it: a name is a value
    "--- a\n+++ b\n-    x = 1\n",  # a removed line with no replacement
])
def test_anything_else_is_not(change):
    assert not mutation.sql_case_only(change)


def test_equivalents_are_read_with_the_code_they_quote(tmp_path):
    doc = tmp_path / "mutation.md"
    doc.write_text("# Equivalent\n\n- `a.b.x_f__mutmut_3` `sum(+1)`: 2-D: +1 is -1.\n"
                   "- not an entry\n- `a.b.x_g__mutmut_12` ``: the empty quote still counts\n")
    assert mutation.load_equivalents(doc) == {"a.b.x_f__mutmut_3": "sum(+1)", "a.b.x_g__mutmut_12": ""}
    assert mutation.load_equivalents(tmp_path / "missing.md") == {}


def test_the_score_leaves_equivalents_out_and_counts_a_timeout_as_killed():
    score = ModuleScore("m.py", {"m.x__mutmut_1": "killed", "m.x__mutmut_2": "timeout", "m.x__mutmut_3": "survived",
                                 "m.x__mutmut_4": "survived", "m.x__mutmut_5": "no tests"}, {"m.x__mutmut_4"})
    assert (score.killed, score.judged, score.count("survived")) == (2, 4, 1)
    assert score.score == 50.0
    assert ModuleScore("empty.py").score == 100.0
    row = mutation.table([score]).splitlines()[-1]
    assert row == "| `m.py` | 5 | 2 | 1 | 1 | 1 | 50.0 % |"


def test_a_groups_folder_gets_only_its_own_modules_and_tests():
    group = Group("g", ("storage/jobs.py",), ("tests/test_storage_jobs.py",))
    text = mutation.group_pyproject(group, '[project]\nname = "x"\n\n[tool.mutmut]\nonly_mutate = ["all"]\n\n'
                                           '[tool.stickerbot-mutation.g]\nmodules = []\n\n[tool.pytest.ini_options]\n'
                                           'asyncio_mode = "auto"\n')
    config = tomllib.loads(text)
    assert config["project"] == {"name": "x"} and config["tool"]["pytest"]["ini_options"]["asyncio_mode"] == "auto"
    assert "stickerbot-mutation" not in config["tool"]
    mutmut = config["tool"]["mutmut"]
    assert mutmut["source_paths"] == ["storage/"] and mutmut["only_mutate"] == ["storage/jobs.py"]
    assert mutmut["pytest_add_cli_args_test_selection"] == ["tests/test_storage_jobs.py"]
    assert "storage/" not in mutmut["also_copy"] and "bot/" in mutmut["also_copy"]
    assert mutmut["process_isolation"] == "forkserver" and "not slow" in mutmut["pytest_add_cli_args"]


GROUPS = [Group("queue", ("storage/jobs.py",), ("tests/test_storage_jobs.py",), minutes=8),
          Group("secret", ("seal_runtime/server.py",), ("tests/test_runtime_secret.py",), minutes=2),
          Group("spec", ("bot/sticker_spec.py",), ("tests/test_sticker_spec.py",), minutes=5)]
TABLE = {"queue": {"modules": ["storage/jobs.py"], "tests": ["tests/test_storage_jobs.py"], "minutes": 8},
         "secret": {"modules": ["seal_runtime/server.py"], "tests": ["tests/test_runtime_secret.py"], "minutes": 2},
         "spec": {"modules": ["bot/sticker_spec.py"], "tests": ["tests/test_sticker_spec.py"], "minutes": 5}}


def names(groups):
    return [g.name for g in groups]


def test_ci_runs_the_groups_whose_modules_or_tests_changed_modules_first():
    chosen = mutation.changed_groups(GROUPS, {"tests/test_storage_jobs.py", "bot/sticker_spec.py", "README.md"},
                                     TABLE, TABLE)
    assert names(chosen) == ["spec", "queue"]
    assert mutation.changed_groups(GROUPS, {"README.md", "pyproject.toml"}, TABLE, TABLE) == []


def test_a_changed_group_table_selects_that_group_but_a_remeasured_time_does_not():
    new = {**TABLE, "spec": {**TABLE["spec"], "tests": ["tests/test_sticker_spec.py", "tests/test_exports.py"]},
           "queue": {**TABLE["queue"], "minutes": 11}}
    assert names(mutation.changed_groups(GROUPS, {"pyproject.toml"}, TABLE, new)) == ["spec"]
    assert names(mutation.changed_groups(GROUPS, set(), {}, TABLE)) == ["secret", "spec", "queue"]  # all new


def test_a_changed_runner_is_checked_on_its_small_group():
    assert mutation.RUNNER_CHECK == "runtime_secret"
    runner = [Group("runtime_secret", ("seal_runtime/server.py",), (), minutes=2), *GROUPS[:1]]
    table = {"runtime_secret": {"modules": ["seal_runtime/server.py"], "tests": []}, "queue": TABLE["queue"]}
    assert names(mutation.changed_groups(runner, {"tests/mutation.py"}, table, table)) == ["runtime_secret"]


def test_the_budget_keeps_groups_in_order_while_they_fit():
    assert [names(part) for part in mutation.within_budget(GROUPS, 10)] == [["queue", "secret"], ["spec"]]
    assert [names(part) for part in mutation.within_budget(GROUPS, 15)] == [names(GROUPS), []]
    assert [names(part) for part in mutation.within_budget(GROUPS, 1)] == [[], names(GROUPS)]


def test_every_configured_group_names_files_that_exist_and_has_a_measured_time():
    for group in mutation.load_groups():
        for path in group.modules + group.tests:
            assert (mutation.ROOT / path).is_file(), (group.name, path)
        assert group.minutes > 0, group.name


def test_a_hand_mutant_whose_code_moved_on_is_stale_not_missed(tmp_path):
    (tmp_path / "m.py").write_text("x = 1\nx = 1\n")
    twice = hand_mutants.HandMutant("twice", "m.py", "x = 1\n", "x = 2\n", ("t",))
    with pytest.raises(LookupError, match="2 times"):
        hand_mutants.apply(twice, tmp_path)
    hand_mutants.apply(hand_mutants.HandMutant("once", "m.py", "x = 1\nx = 1", "x = 1\nx = 3", ("t",)), tmp_path)
    assert (tmp_path / "m.py").read_text() == "x = 1\nx = 3\n"


def test_a_caught_hand_mutant_reports_its_failing_test_and_error():
    output = ("F\n=== FAILURES ===\n___ test_x ___\n    def test_x():\n>       assert f() == 2\n"
              "E       assert 1 == 2\nE        +  where 1 = f()\n"
              "FAILED tests/test_a.py::test_x - assert 1 == 2\n1 failed in 0.1s\n")
    assert hand_mutants.first_failure(output) == ("test_x", "assert 1 == 2")


def test_every_hand_mutant_applies_to_the_code_as_it_is_now():
    for mutant in hand_mutants.MUTANTS:
        assert (mutation.ROOT / mutant.path).read_text().count(mutant.old) == 1, mutant.name
        assert mutant.tests and all("::" in test for test in mutant.tests), mutant.name


SOURCE = '''"""A module."""
LIMIT = 3


def plain(x):
    return x + LIMIT


class Thing:
    size = 2

    @property
    def area(self):
        return self.size ** 2

    async def grow(self):
        self.size += 1
'''


def test_a_change_inside_functions_names_those_functions_as_mutmut_does():
    globs = mutation.function_globs("pkg/mod.py", {6, 12}, SOURCE)  # plain's body, the decorator of area
    assert globs == {"pkg.mod.x_plain__mutmut_*": 2, "pkg.mod.x\u01c1Thing\u01c1area__mutmut_*": 3}
    assert mutation.function_globs("pkg/mod.py", {17}, SOURCE) == {"pkg.mod.x\u01c1Thing\u01c1grow__mutmut_*": 2}


@pytest.mark.parametrize("line", [2, 10, 1])  # a constant, a class attribute, the docstring
def test_a_change_outside_any_function_cannot_be_narrowed(line):
    assert mutation.function_globs("pkg/mod.py", {6, line}, SOURCE) is None


def test_mutmuts_names_for_a_method_use_its_separator():
    name = "seal_runtime.seal.attention_loss.x\u01c1SpatialAttentionLoss\u01c1__init____mutmut_11"
    assert mutation.fnmatch.fnmatch(name, "seal_runtime.seal.attention_loss.x\u01c1SpatialAttentionLoss\u01c1*")
