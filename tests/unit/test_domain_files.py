"""A domain file: read with every bad field named, edited by dotted key, written back out to the same config."""

import pytest

from forge.domain.tenant_domains import DomainInvalid, diff, parse_file, setting_value, to_toml, with_settings
from forge.domain_templates import load_domains

SUPPORT = '''
description = "Support tickets routed to a team"
system_prompt = """You route support tickets.
Answer with 'team: NAME'."""

[task]
type = "classification"
parse = 'team:\\s*(\\w+)'
labels = ["billing", "shipping", "account"]

[gates]
max_gap_to_teacher = 20
min_eval_examples = 15

[filters]
near_dup_threshold = "off"
'''


@pytest.mark.parametrize("name", sorted(load_domains()))
def test_every_template_exported_as_toml_reads_back_to_the_same_config(name):
    config = load_domains()[name]
    assert parse_file(to_toml(config), name) == config


def test_a_users_file_reads_back_from_its_export_with_multiline_prompts_and_regexes_intact():
    config = parse_file(SUPPORT, "support")
    assert config.model_prefix == "forge-support" and config.filters.near_dup_threshold is None
    assert config.task.parse == r"team:\s*(\w+)" and config.system_prompt.endswith("'team: NAME'.")
    exported = to_toml(config)
    assert "'''\nYou route support tickets." in exported  # the prompt stays readable
    assert parse_file(exported, "support") == config


@pytest.mark.parametrize("text,named", [
    ("[gates]\nmin_scor = 3", "gates: unknown key 'min_scor'; allowed: confidence, max_gap_to_teacher"),
    ("[gates]\nmin_score = 'high'", "gates.min_score: Input should be a valid number"),
    ("[gates]\nmin_score = 300", "gates.min_score: Input should be less than or equal to 100"),
    ("[scoring]\nstructure = 0.9", "scoring: scoring weights must add up to 1 (they add up to 1.65)"),
    ("[filters]\nexclude_patterns = ['(']", "filters.exclude_patterns: regex '(' does not compile"),
    ("[task]\ntype = 'ranking'", "task.type: Input should be 'generation', 'classification'"),
    ("colour = 'blue'", "domain: unknown key 'colour'; allowed: canary, description, drift, eval_set, filters"),
    ("pii_policy = 'keep'", "pii_policy: Input should be 'redact' or 'drop'"),
])
def test_a_bad_field_is_refused_naming_the_field_and_what_is_allowed(text, named):
    with pytest.raises(DomainInvalid) as error:
        parse_file(text, "support", origin="domain file task.toml")
    assert "The domain file task.toml is not a valid domain:" in str(error.value) and named in str(error.value)


def test_a_file_that_is_not_toml_or_names_another_domain_is_refused():
    with pytest.raises(DomainInvalid, match=r"not valid TOML \(.*line 2"):
        parse_file("description = 'x'\npii_policy = = 'drop'", "support")
    with pytest.raises(DomainInvalid, match="names domain 'sales', but this is domain 'support'"):
        parse_file("name = 'sales'", "support")


def test_set_values_are_read_as_toml_and_the_change_lists_each_key_before_and_after():
    config = parse_file(SUPPORT, "support")
    changed = with_settings(config, {"gates.min_score": setting_value("70"), "description": setting_value("Tickets"),
                                     "task.labels": setting_value('["billing", "returns"]')})
    assert changed.gates.min_score == 70 and changed.description == "Tickets"
    assert diff(config.model_dump(mode="json"), changed.model_dump(mode="json")) == [
        'description: "Support tickets routed to a team" → "Tickets"',
        "gates.min_score: 60.0 → 70.0",
        'task.labels: ["billing", "shipping", "account"] → ["billing", "returns"]']
    with pytest.raises(DomainInvalid, match="cannot be renamed"):
        with_settings(config, {"name": "sales"})
    with pytest.raises(DomainInvalid, match="'description' is a setting, not a table"):
        with_settings(config, {"description.x": 1})
