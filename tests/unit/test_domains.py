import pytest

from forge.domain.errors import ConfigError, DomainNotFound
from forge.domain_templates import get_domain, load_domains


def test_the_five_packaged_domains_load_with_prompts_filters_and_weights():
    domains = load_domains()
    assert set(domains) >= {"coding", "legal", "healthcare", "finance", "education"}
    for config in domains.values():
        assert config.system_prompt and config.model_prefix.startswith("forge-")
        weights = config.scoring
        assert abs(weights.structure + weights.correctness + weights.similarity + weights.completeness - 1) < 1e-9
    assert domains["coding"].filters.require_code_block
    assert domains["healthcare"].pii_policy == "drop"


def test_a_users_domain_file_adds_or_overrides_a_domain(tmp_path):
    (tmp_path / "domains").mkdir()
    (tmp_path / "domains" / "support.toml").write_text(
        'name = "support"\ndescription = "Customer support"\nmodel_prefix = "forge-support"\n'
    )
    (tmp_path / "domains" / "coding.toml").write_text(
        'name = "coding"\ndescription = "Ours"\nmodel_prefix = "forge-code"\n'
    )
    domains = load_domains(tmp_path)
    assert domains["support"].description == "Customer support"
    assert domains["coding"].description == "Ours"


def test_an_invalid_domain_file_names_the_file_and_the_problem(tmp_path):
    (tmp_path / "domains").mkdir()
    bad = tmp_path / "domains" / "bad.toml"
    bad.write_text('name = "bad"\ndescription = "x"\nmodel_prefix = "p"\n[scoring]\nstructure = 0.9\n')
    with pytest.raises(ConfigError) as caught:
        load_domains(tmp_path)
    assert str(bad) in str(caught.value) and "add up to 1" in str(caught.value)


def test_an_unknown_domain_lists_the_known_ones():
    with pytest.raises(DomainNotFound) as caught:
        get_domain("astrology")
    assert "coding" in str(caught.value)
