"""The README's exit-code table and command list stay true to the code."""

import re
from pathlib import Path

from cacheops.cli import cli
from cacheops.exit_codes import DESCRIPTIONS, ExitCode

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_exit_code_is_documented():
    section = README.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    documented = {int(m) for m in re.findall(r"^\| (\d+) \|", section, re.M)}
    assert documented == {int(c) for c in ExitCode}
    assert set(DESCRIPTIONS) == set(ExitCode)


def test_every_command_has_a_readme_section_and_an_example():
    for name in cli.list_commands(None):
        command = cli.get_command(None, name)
        assert f"### `cacheops {name}`" in README, name
        assert "Example" in (command.help or ""), name


def test_shipped_playbook_is_a_valid_labelled_set():
    from cacheops.semantic.labelled import load_labelled_set

    faq = load_labelled_set(Path(__file__).parent.parent / "playbooks" / "faq.yaml")
    assert len(faq.prompts) >= 20 and any(p.paraphrases for p in faq.prompts)


def test_shipped_playbook_is_a_valid_warm_playbook():
    from cacheops.ops.playbook import load_playbook

    faq = load_playbook(Path(__file__).parent.parent / "playbooks" / "faq.yaml")
    assert {c.type for c in faq.warm.caches} == {"langchain_exact", "langchain_semantic", "redisvl_semantic"}
