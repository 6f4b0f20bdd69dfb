from __future__ import annotations

from pathlib import Path

import pytest

from mesh import config

ROOT = Path(__file__).resolve().parent.parent


def test_configuration_doc_matches_the_code() -> None:
    assert (ROOT / "docs" / "configuration.md").read_text() == config.documentation()


def test_environment_overrides_file_overrides_default(tmp_path: Path) -> None:
    cfg = tmp_path / "gaitpay.toml"
    cfg.write_text('log_level = "debug"\ndefault_deadline_s = 3.5\nreflection = false\n')
    settings = config.load({"GAITPAY_CONFIG": str(cfg), "GAITPAY_DEFAULT_DEADLINE_S": "7"})
    assert settings.log_level == "debug"  # from the file
    assert settings.default_deadline_s == 7.0  # the environment wins
    assert settings.reflection is False
    assert settings.max_deadline_s == 60.0  # default
    assert settings.home.is_absolute()


def test_settings_are_frozen() -> None:
    settings = config.load({})
    with pytest.raises(AttributeError):
        settings.log_level = "error"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"GAITPAY_REFLECTION": "maybe"}, "GAITPAY_REFLECTION"),
        ({"GAITPAY_DEFAULT_DEADLINE_S": "soon"}, "GAITPAY_DEFAULT_DEADLINE_S"),
        ({"GAITPAY_DEFAULT_DEADLINE_S": "-1"}, "non-negative"),
        ({"GAITPAY_MATCHER_ADDR": "localhost"}, "host:port"),
        ({"GAITPAY_MILVUS_INDEX": "IVF_PQ"}, "GAITPAY_MILVUS_INDEX"),
        ({"GAITPAY_MILVUS_SEARCH_CONSISTENCY": "Eventually"}, "expected one of Bounded, Strong"),
        ({"GAITPAY_RETENTION_DAYS": "1"}, "at least 3 days"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(config.ConfigError, match=needle):
        config.load(env)


def test_unknown_setting_in_file_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "gaitpay.toml"
    cfg.write_text('log_levle = "debug"\n')
    with pytest.raises(config.ConfigError, match="log_levle"):
        config.load({"GAITPAY_CONFIG": str(cfg)})


def test_the_vault_token_can_come_from_the_agents_file(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s.agent-token\n")
    assert config.load(environ={"GAITPAY_VAULT_TOKEN_FILE": str(token_file)}).vault_token == "s.agent-token"
    # An explicit token wins; a missing file is a clear error naming the variable.
    assert config.load(environ={"GAITPAY_VAULT_TOKEN_FILE": str(token_file), "VAULT_TOKEN": "t"}).vault_token == "t"
    with pytest.raises(config.ConfigError, match="GAITPAY_VAULT_TOKEN_FILE"):
        config.load(environ={"GAITPAY_VAULT_TOKEN_FILE": str(tmp_path / "missing")})
