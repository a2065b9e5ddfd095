import pytest

from assistant.config import Secret, load_settings
from tools.errors import InputError


def test_explicit_beats_config_file_beats_environment(tmp_path):
    (tmp_path / "config.toml").write_text('model = "from-file"\nbackend = "openai"\n')
    env = {"ANOMALY_CHAT_HOME": str(tmp_path), "ANOMALY_CHAT_MODEL": "from-env", "ANOMALY_CHAT_BACKEND": "gemini"}
    settings = load_settings({"model": "explicit"}, env=env)
    assert settings.model == "explicit"
    assert settings.backend == "openai"
    assert settings.home == tmp_path


def test_unknown_config_key_is_rejected_with_the_allowed_keys(tmp_path):
    (tmp_path / "config.toml").write_text('modle = "typo"\n')
    with pytest.raises(InputError, match="unknown keys"):
        load_settings(env={"ANOMALY_CHAT_HOME": str(tmp_path)})


def test_keys_are_secrets_that_never_print(tmp_path):
    settings = load_settings(env={"ANOMALY_CHAT_HOME": str(tmp_path), "OPENAI_API_KEY": "sk-test.value"})
    assert isinstance(settings.openai_api_key, Secret)
    assert "sk-test.value" not in repr(settings) and "sk-test.value" not in f"{settings.openai_api_key}"
    assert settings.openai_api_key.reveal() == "sk-test.value"


def test_auto_backend_is_offline_without_keys_and_openai_with_a_base_url(tmp_path):
    assert load_settings(env={"ANOMALY_CHAT_HOME": str(tmp_path)}).resolved_backend() == "offline"
    env = {"ANOMALY_CHAT_HOME": str(tmp_path), "OPENAI_BASE_URL": "http://127.0.0.1:11434/v1"}
    assert load_settings(env=env).resolved_backend() == "openai"
    assert load_settings(env={"ANOMALY_CHAT_HOME": str(tmp_path), "GOOGLE_API_KEY": "g"}).resolved_backend() == "gemini"
