"""The committed schema module is exactly what the generator makes from the specs."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kafka_chaos_proxy.codec import generate

SPECS = generate.specs_dir_from(None)
REPO = Path(generate.__file__).resolve().parent.parent


@pytest.mark.skipif(not SPECS.is_dir(), reason=f"Kafka message specs not found at {SPECS} "
                    "(set KCP_SPECS_DIR); CI always has them")
def test_committed_schema_is_fresh(tmp_path: Path) -> None:
    out = tmp_path / "schema.py"
    subprocess.run([sys.executable, "-m", "kafka_chaos_proxy.codec.generate",
                    "--specs-dir", str(SPECS),
                    "--output", str(out)], check=True, cwd=REPO)
    committed = (REPO / "codec" / "schema.py").read_text(encoding="utf-8")
    assert out.read_text(encoding="utf-8") == committed, (
        "codec/schema.py is stale: run `python -m kafka_chaos_proxy.codec.generate` and commit "
        "the result")


@pytest.mark.skipif(not SPECS.is_dir(), reason=f"Kafka message specs not found at {SPECS}")
def test_generation_is_deterministic() -> None:
    assert generate.render(SPECS) == generate.render(SPECS)


def test_snake_case() -> None:
    cases = {"GroupId": "group_id", "ProtocolType": "protocol_type", "IsInternal": "is_internal",
             "ClientSoftwareVersion": "client_software_version", "ThrottleTimeMs":
             "throttle_time_ms", "KRaftVersionFeature": "k_raft_version_feature",
             "isKRaftController": "is_k_raft_controller", "TopicId": "topic_id"}
    for spec_name, key in cases.items():
        assert generate.snake_case(spec_name) == key


def test_strip_comments_keeps_slashes_inside_strings() -> None:
    text = '{ "a": "http://x", // note\n  "b": "say \\"//\\"" } // end'
    assert generate.strip_comments(text) == '{ "a": "http://x", \n  "b": "say \\"//\\"" } '


def test_parse_range() -> None:
    assert generate.parse_range("3+") == (3, 0x7FFF)
    assert generate.parse_range("0-2") == (0, 2)
    assert generate.parse_range("5") == (5, 5)
    assert generate.parse_range("none") == (0, -1)
    assert generate.parse_range(None) == (0, -1)


def test_specs_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KCP_SPECS_DIR", str(tmp_path))
    assert generate.specs_dir_from(None) == tmp_path
    assert generate.specs_dir_from("/x") == Path("/x")  # the flag wins over the environment
    monkeypatch.delenv("KCP_SPECS_DIR")
    assert generate.specs_dir_from(None) == REPO.parent / "shared" / "kafka-message-specs"


def test_check_mode_reports_staleness(tmp_path: Path) -> None:
    if not SPECS.is_dir():
        pytest.skip(f"Kafka message specs not found at {SPECS}")
    stale = tmp_path / "schema.py"
    stale.write_text("# old\n", encoding="utf-8")
    assert generate.main(["--specs-dir", str(SPECS), "--output", str(stale), "--check"]) == 1
    assert generate.main(["--specs-dir", str(SPECS), "--output", str(stale)]) == 0
    assert generate.main(["--specs-dir", str(SPECS), "--output", str(stale), "--check"]) == 0


def test_specs_from_a_jar_match_the_directory(tmp_path: Path) -> None:
    """kafka-clients jars carry the specs as common/message/*.json; same facts either way."""
    if not SPECS.is_dir():
        pytest.skip(f"Kafka message specs not found at {SPECS}")
    jar = tmp_path / "kafka-clients.jar"
    with zipfile.ZipFile(jar, "w") as z:
        for p in sorted(SPECS.glob("*.json")):
            z.write(p, f"common/message/{p.name}")
        z.writestr("org/apache/kafka/Other.class", b"\xca\xfe")
    assert generate.render(jar, SPECS / "errors.tsv") == generate.render(SPECS)
