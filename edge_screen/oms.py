"""The OpenSSF model-signing (OMS) v1.0 signature of a bundle directory, shared by the signer
(``edge-screen-fw sign``) and the device's verifier, so the two cannot drift.

The format is what ``model_signing sign key`` (model-signing 1.1) writes, so a model team and a
security team can check a bundle with the standard tool: ``model.sig`` is a Sigstore bundle v0.3
JSON whose DSSE envelope carries an in-toto Statement v1 listing the sha256 of every file of the
directory; the envelope is signed with ECDSA (P-256/384/521, the only key types OMS's key mode
takes). OMS signs files, not our fields: ``bundle_version``, expiry and the minimum runtime live
in ``manifest.json``, which is one of the signed files. The verifier here is stricter than the
standard tool: it takes only sha256 per file, no symlinks, and no files hidden under ignore paths.

Nothing here reads files: bytes and keys in, digests or a named error out. ``cryptography`` is
imported only when a signature is checked, so screening never needs it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import SignatureError, UnsafePath

SIGNATURE_FILE = "model.sig"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
# model_signing leaves these out of every signature unless told otherwise; we sign with the same
# list so its verifier accepts our bundles, and ours treats any file under them as unlisted.
GIT_PATHS = (".git", ".gitattributes", ".github", ".gitignore")
IGNORE_PATHS = (*GIT_PATHS, SIGNATURE_FILE)
MAX_SIGNATURE_BYTES = 1 << 20  # a statement lists a few dozen files: kilobytes
_CURVE_HASH = {"secp256r1": "SHA256", "secp384r1": "SHA384", "secp521r1": "SHA512"}


@dataclass(frozen=True)
class SignedFiles:
    """What a valid signature vouches for: each file's sha256 (hex), and which trusted key."""

    digests: Mapping[str, str]
    key_hint: str


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what the signature is computed over."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def key_hint(public_pem: bytes) -> str:
    """OMS's key hint: the sha256 of the public key's PEM (SubjectPublicKeyInfo) bytes."""
    return hashlib.sha256(_public_key(public_pem)[1]).hexdigest()


def safe_name(name: str) -> bool:
    """A relative POSIX path that stays inside the bundle directory."""
    parts = name.split("/")
    return bool(name) and "\\" not in name and "\x00" not in name and not name.startswith("/") \
        and all(p not in ("", ".", "..") for p in parts)


def ordered(names: Iterable[str]) -> list[str]:
    """model_signing's order: by path components (``a/b`` before ``a-b``), not by string."""
    return sorted(names, key=lambda n: n.split("/"))


def statement(digests: Mapping[str, str], subject: str) -> bytes:
    """The in-toto statement that lists ``digests`` (file name -> sha256 hex): the payload."""
    names = ordered(digests)
    for name in names:
        if not safe_name(name):
            raise UnsafePath(f"bundle file name {name!r} is not a plain relative path")
    root = hashlib.sha256(b"".join(bytes.fromhex(digests[n]) for n in names)).hexdigest()
    resources = [{"name": n, "algorithm": "sha256", "digest": digests[n]} for n in names]
    body = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject, "digest": {"sha256": root}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": False,
                              "ignore_paths": list(IGNORE_PATHS)},
            "resources": resources,
        },
    }
    return json.dumps(body, indent=2).encode()


def envelope(payload: bytes, signature: bytes, public_pem: bytes) -> bytes:
    """The ``model.sig`` bytes for a payload and its DER ECDSA signature."""
    body = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key_hint(public_pem)}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}],
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()


def open_signature(data: bytes, trusted: Sequence[bytes]) -> SignedFiles:
    """Check ``model.sig`` against the trusted public keys (PEM; several, for rotation) and
    return the files it vouches for. Raises ``SignatureError`` or ``UnsafePath``."""
    if not trusted:
        raise SignatureError("no trusted public key given")
    keys = [_public_key(pem) for pem in trusted]  # every one, so a bad rotation key shows now
    if len(data) > MAX_SIGNATURE_BYTES:
        raise SignatureError(f"{SIGNATURE_FILE}: larger than {MAX_SIGNATURE_BYTES} bytes")
    doc = _json(data, SIGNATURE_FILE)
    if _field(doc, "mediaType", str, "bundle") != BUNDLE_MEDIA_TYPE:
        raise SignatureError(f"{SIGNATURE_FILE}: not a Sigstore bundle v0.3")
    env = _field(doc, "dsseEnvelope", dict, "bundle")
    if _field(env, "payloadType", str, "dsseEnvelope") != PAYLOAD_TYPE:
        raise SignatureError(f"{SIGNATURE_FILE}: payload is not an in-toto statement")
    payload = _b64(_field(env, "payload", str, "dsseEnvelope"), "dsseEnvelope.payload")
    signatures = _field(env, "signatures", list, "dsseEnvelope")
    if len(signatures) != 1:
        raise SignatureError(f"{SIGNATURE_FILE}: expected one signature, found {len(signatures)}")
    sig = _b64(_field(signatures[0], "sig", str, "signatures[0]"), "signatures[0].sig")
    hint = _signed_by(pae(PAYLOAD_TYPE, payload), sig, keys)
    material = doc.get("verificationMaterial")
    named = material.get("publicKey", {}).get("hint") if isinstance(material, dict) and \
        isinstance(material.get("publicKey"), dict) else None
    if named is not None and named != hint:  # as model_signing refuses it: "Key mismatch"
        raise SignatureError(f"{SIGNATURE_FILE}: its key hint names another key than the one "
                             "that signed it")
    return SignedFiles(_resources(_json(payload, "signed statement")), hint)


def _signed_by(message: bytes, sig: bytes, trusted: Sequence[tuple[Any, bytes]]) -> str:
    """The hint of the trusted key that made ``sig``. The envelope's own hint is not signed, so
    every trusted key is tried rather than trusting it to pick one."""
    _need_cryptography()
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    for key, spki in trusted:
        algorithm = getattr(hashes, _CURVE_HASH[key.curve.name])()
        try:
            key.verify(sig, message, ec.ECDSA(algorithm))
        except InvalidSignature:
            continue
        return hashlib.sha256(spki).hexdigest()
    raise SignatureError(
        f"{SIGNATURE_FILE}: the signature was not made by any trusted key "
        "(a tampered statement or signature, or a key that is not trusted)")


def _public_key(pem: bytes) -> tuple[Any, bytes]:
    """The EC public key in ``pem`` and its canonical PEM bytes; other key types are refused."""
    _need_cryptography()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    if not isinstance(pem, bytes) or pem.count(b"-----BEGIN") != 1:
        raise SignatureError("a trusted key is one PEM public key (one BEGIN block)")
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"not a PEM public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in _CURVE_HASH:
        raise SignatureError("trusted keys must be EC P-256/384/521 (OMS key signing)")
    spki = key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, spki


def _need_cryptography() -> None:
    """Signatures are checked with ``cryptography``; without it nothing signed is believed."""
    try:
        import cryptography  # noqa: F401
    except ImportError as exc:
        raise SignatureError("checking signatures needs the cryptography package: "
                             "pip install 'edge-screen[updates]'") from exc


def _resources(doc: Any) -> dict[str, str]:
    if _field(doc, "_type", str, "statement") != STATEMENT_TYPE:
        raise SignatureError("signed statement: not an in-toto Statement v1")
    if _field(doc, "predicateType", str, "statement") != PREDICATE_TYPE:
        raise SignatureError("signed statement: not an OMS v1.0 signature")
    predicate = _field(doc, "predicate", dict, "statement")
    ser = _field(predicate, "serialization", dict, "predicate")
    if (ser.get("method"), ser.get("hash_type"), ser.get("allow_symlinks")) != (
            "files", "sha256", False):
        raise SignatureError("signed statement: only per-file sha256 without symlinks is taken")
    ignored = ser.get("ignore_paths", [])
    if not isinstance(ignored, list) or not set(ignored) <= set(IGNORE_PATHS):
        raise SignatureError(f"signed statement: ignore_paths beyond {list(IGNORE_PATHS)}")
    digests: dict[str, str] = {}
    root = hashlib.sha256()
    for i, r in enumerate(_field(predicate, "resources", list, "predicate")):
        where = f"resources[{i}]"
        name = _field(r, "name", str, where)
        if not safe_name(name):
            raise UnsafePath(f"signed statement: {where} names {name!r}, outside the bundle")
        if _field(r, "algorithm", str, where) != "sha256" or name in digests:
            raise SignatureError(f"signed statement: {where} ({name}) is not a unique sha256")
        digest = _field(r, "digest", str, where).lower()
        try:
            raw = bytes.fromhex(digest)
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise SignatureError(f"signed statement: {where} ({name}) has no sha256 digest")
        digests[name] = digest
        root.update(raw)
    subjects = _field(doc, "subject", list, "statement")
    if len(subjects) != 1:
        raise SignatureError("signed statement: expected one subject")
    subject = _field(_field(subjects[0], "digest", dict, "subject"), "sha256", str, "subject")
    if subject.lower() != root.hexdigest():
        raise SignatureError("signed statement: the subject digest does not match its files")
    return digests


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise SignatureError(f"{what}: not JSON ({type(exc).__name__})") from exc


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(f"{SIGNATURE_FILE}: {what} is not base64") from exc


def _field(d: Any, key: str, kind: type, what: str) -> Any:
    if not isinstance(d, dict) or not isinstance(d.get(key), kind):
        raise SignatureError(f"{SIGNATURE_FILE}: {what}.{key} is missing or not a {kind.__name__}")
    return d[key]
