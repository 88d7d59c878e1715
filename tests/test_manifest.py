import copy
import json

import pytest

from edge_screen import ManifestError, UnsafePath
from edge_screen.bundle import Bundle, default_bundle_dir
from edge_screen.manifest import SCHEMA, parse_manifest


@pytest.fixture(scope="module")
def shipped() -> dict:
    return json.loads((default_bundle_dir() / "manifest.json").read_text())


def test_shipped_manifest_parses_and_every_file_matches(shipped: dict) -> None:
    manifest = parse_manifest(shipped)
    assert manifest.schema == SCHEMA
    Bundle.open().verify_all()


def test_every_model_prefers_a_variant_on_each_platform(shipped: dict) -> None:
    manifest = parse_manifest(shipped)
    for spec in manifest.models:
        for machine in ("x86_64", "aarch64", "armv7l", "riscv64"):
            assert spec.preferred_variant(machine) in spec.variants


def mutate(base: dict, path: list, value) -> dict:  # type: ignore[no-untyped-def]
    d = copy.deepcopy(base)
    node = d
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return d


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["schema"], "edge-screen.bundle/99", "not supported"),
        (["models", 0, "task"], "mind_reading", "task"),
        (["models", 0, "variants", 0, "sha256"], "abc", "sha256"),
        (["models", 0, "variants"], [], "at least one variant"),
        (["models", 0, "preferred"], {"default": "int3"}, "unknown variant"),
        (["models", 0, "input", "std"], [0, 1, 1], "zero"),
        (["models", 0, "input", "size"], [0, 192], "size"),
        (["models", 0, "input"], KeyError, "missing field 'input'"),
        (["models"], "everything", "expected"),
        (["bundle_version"], "2026.12.x", "dotted version"),
        (["bundle_version"], "-1", "dotted version"),
        (["min_runtime"], KeyError, "missing field 'min_runtime'"),
        (["min_runtime"], "v0.1", "dotted version"),
        (["created"], "yesterday", "UTC time"),
        (["created"], "2026-12-02T13:00:00+01:00", "UTC time"),
        (["expires"], "2026-13-01T00:00:00Z", "UTC time"),
        (["card", "sha256"], "0" * 63, "sha256"),
    ],
)
def test_malformed_manifest_names_the_field(shipped: dict, path: list, value, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ManifestError, match=message):
        parse_manifest(mutate(shipped, path, value))


def test_duplicate_model_ids_are_refused(shipped: dict) -> None:
    d = copy.deepcopy(shipped)
    d["models"].append(copy.deepcopy(d["models"][0]))
    with pytest.raises(ManifestError, match="unique"):
        parse_manifest(d)


def _classifier_index(shipped: dict) -> int:
    return next(i for i, m in enumerate(shipped["models"]) if m["task"] == "image_classification")


@pytest.mark.parametrize(("signal", "message"), [("minor", "reserved"), ("Sexual!", "signal name")])
def test_a_classifier_cannot_take_a_reserved_or_malformed_signal_name(
    shipped: dict, signal: str, message: str
) -> None:
    """Finding 4: a classifier whose signal was named `minor` silently overwrote the age signal."""
    path = ["models", _classifier_index(shipped), "output", "signal"]
    with pytest.raises(ManifestError, match=message):
        parse_manifest(mutate(shipped, path, signal))


def test_a_second_face_detector_is_refused_not_ignored(shipped: dict) -> None:
    d = copy.deepcopy(shipped)
    det = next(m for m in d["models"] if m["task"] == "face_detection")
    d["models"].append({**copy.deepcopy(det), "id": "face_detector_2"})
    with pytest.raises(ManifestError, match="more than one face_detection"):
        parse_manifest(d)


def test_a_variant_left_out_of_the_device_bundle_says_how_to_get_it() -> None:
    from edge_screen import Screener, VariantNotShipped

    spec = next(m for m in Bundle.open().manifest.models if m.id == "open_nsfw")
    assert spec.not_shipped, "the device bundle lists the variants it leaves out"
    with pytest.raises(VariantNotShipped, match="build-default --all-variants"):
        Screener(variants={"open_nsfw": spec.not_shipped[0]})
    with pytest.raises(ManifestError, match="no variant 'fp64'"):  # a typo stays a typo
        Screener(variants={"open_nsfw": "fp64"})


def test_not_shipped_cannot_name_a_variant_the_bundle_ships(shipped: dict) -> None:
    data = copy.deepcopy(shipped)
    model = data["models"][0]
    model["not_shipped"] = [model["variants"][0]["name"]]
    with pytest.raises(ManifestError, match="not_shipped"):
        parse_manifest(data)


@pytest.mark.parametrize(
    ("path", "name"),
    [
        (["models", 0, "variants", 0, "file"], "../../etc/passwd"),
        (["notices", 0, "file"], ".."),
        (["card", "file"], "/etc/passwd"),
        (["models", 0, "variants", 0, "file"], "a\x00b"),
    ],
)
def test_a_path_out_of_the_bundle_is_unsafe(shipped: dict, path: list, name: str) -> None:
    with pytest.raises(UnsafePath, match="plain file name"):
        parse_manifest(mutate(shipped, path, name))


def test_a_file_listed_twice_or_the_manifest_listing_itself_is_refused(shipped: dict) -> None:
    twice = mutate(shipped, ["card"], dict(shipped["notices"][0]))
    with pytest.raises(ManifestError, match="listed twice"):
        parse_manifest(twice)
    itself = mutate(shipped, ["card", "file"], "manifest.json")
    with pytest.raises(ManifestError, match="lists itself"):
        parse_manifest(itself)


def test_versions_compare_as_numbers() -> None:
    from edge_screen.release import version_key

    assert version_key("2026.12.10") > version_key("2026.12.9")
    assert version_key("1.0") == version_key("1.0.0") == version_key("1")
    assert version_key("0.1.0") < version_key("0.1.1") < version_key("0.2")
