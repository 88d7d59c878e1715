"""Step 5, sign: keys, and an OpenSSF model-signing signature over a bundle directory.

The format comes from ``edge_screen.oms`` (the module the device verifies with), so what is
signed here and what a device checks cannot drift; the standard ``model_signing verify key``
accepts it too. Keys are EC P-256, the curve OMS key signing takes. ``sign`` refuses a bundle
whose validation numbers are missing or outside the recipe's limits: a signature is a promise
that the bundle was measured and passed.
"""

from __future__ import annotations

import os
from pathlib import Path

from edge_screen.bundle import Bundle
from edge_screen.errors import BundleError
from edge_screen.files import ReadLimits, read_directory, verify_directory
from edge_screen.manifest import Manifest
from edge_screen.oms import PAYLOAD_TYPE, SIGNATURE_FILE, envelope, pae, statement
from edge_screen.trust import Expectations
from edge_screen.version import __version__

from .recipe import Recipe, load_recipe

PRIVATE_NAME = "edge-screen-signing.key.pem"
PUBLIC_NAME = "edge-screen-signing.pub.pem"


def keygen(out: Path) -> tuple[Path, Path]:
    """A new P-256 key pair as PEM files in ``out``; the private one readable by its owner only,
    and never overwritten."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    out.mkdir(parents=True, exist_ok=True)
    priv_path, pub_path = out / PRIVATE_NAME, out / PUBLIC_NAME
    fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    pub_path.write_bytes(public)
    return priv_path, pub_path


def sign_directory(root: Path, private_pem: bytes, parse: bool = True) -> Path:
    """Write ``root/model.sig`` over every file of the bundle directory. Only that its manifest
    parses is checked (``sign`` checks the rest); ``parse=False`` signs anything, for tests that
    show what a device does with a signed but malformed manifest."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = serialization.load_pem_private_key(private_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise BundleError("the signing key must be an EC key (OMS key signing: P-256/384/521)")
    if parse:
        Bundle.open(root)  # a manifest the runtime cannot parse is not signed
    digests = {n: d.sha256 for n, d in read_directory(root, ReadLimits()).items()}
    payload = statement(digests, subject=root.resolve().name)
    algorithm = {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}[
        key.curve.key_size]
    signature = key.sign(pae(PAYLOAD_TYPE, payload), ec.ECDSA(algorithm))
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    tmp = root / f".{SIGNATURE_FILE}.new"
    tmp.write_bytes(envelope(payload, signature, public))
    os.replace(tmp, root / SIGNATURE_FILE)
    return root / SIGNATURE_FILE


def check_validation(manifest: Manifest, recipe: Recipe) -> list[str]:
    """Why this bundle must not be signed: every model must be in the recipe, every variant must
    carry its fidelity numbers, and every preferred variant must meet the recipe's limits."""
    from .validate import check

    problems = []
    known = {m.id for m in recipe.models}
    for spec in manifest.models:
        if spec.id not in known:
            problems.append(f"{spec.id}: not a model of the recipe, so it has no limits")
            continue
        limits = recipe.model(spec.id).limits
        preferred = set(spec.preferred.values())
        for v in spec.variants:
            if not v.fidelity:
                problems.append(f"{spec.id}.{v.name}: no validation numbers")
            elif v.name in preferred and (failed := check(limits, dict(v.fidelity))):
                problems.append(f"{spec.id}.{v.name} is preferred but fails {'; '.join(failed)}")
    return problems


def sign(root: Path, private_pem: bytes, recipe: Recipe | None = None) -> Path:
    """Check the bundle (it loads, its files match its manifest, its numbers pass), then sign."""
    bundle = Bundle.open(root)
    bundle.verify_all()
    problems = check_validation(bundle.manifest, recipe or load_recipe())
    if problems:
        raise BundleError(f"{root}: not signed: {'; '.join(problems)}")
    return sign_directory(root, private_pem)


def verify(root: Path, public_pems: list[bytes]) -> Manifest:
    """What a device checks before installing, without the rollback check (no store here)."""
    from datetime import UTC, datetime

    return verify_directory(root, public_pems, Expectations(__version__, datetime.now(UTC)))
