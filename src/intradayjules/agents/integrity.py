"""Pickle-bearing files the project writes (SB3 zips, replay buffers) are signed; unsigned ones are refused.

Loading an SB3 ``.zip`` or a replay buffer ``.pkl`` unpickles it, which runs any code its author put
there. So every such file the trainer writes gets a sidecar ``<file>.hmac``::

    {"alg": "hmac-sha256", "hmac": "<hex>", "bytes": 123456, "file": "dqn_1000_steps.zip"}

where ``hmac = HMAC-SHA256(key, file bytes)`` and ``key`` is this user's secret (32 random bytes in
``$INTRADAYJULES_KEY_FILE`` or ``~/.intradayjules/integrity.key``, created mode 0600; a key file that
group or others can read or write is refused). A digest next to the file would not help against
someone who can write the run directory (they would rewrite the digest too); an HMAC they cannot
forge without the key. A checkpoint therefore resumes only on a machine holding the same key file.

``load_sb3(path, trust_pickle=False)`` and ``load_replay_buffer(model, path, trust_pickle=False)``:

- a signature that does not match the file: always refused (:class:`~intradayjules.errors.IntegrityError`);
- a matching signature: loaded;
- no signature: refused, unless ``trust_pickle`` (the CLI's ``--trust-pickle``: "I made this file"),
  and then a ``<file>.sha256`` sidecar (``sha256sum`` format), when present, must match.

``copy_weights(model, zip_path)`` takes only the tensors (``torch.load(weights_only=True)``) and the step
count (plain JSON) out of an SB3 zip: nothing is unpickled, so it needs no signature.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
import zipfile
from pathlib import Path
from typing import Any

from ..errors import IntegrityError

KEY_ENV = "INTRADAYJULES_KEY_FILE"
SIG_SUFFIX = ".hmac"
ALG = "hmac-sha256"


def key_file() -> Path:
    env = os.environ.get(KEY_ENV)
    return Path(env).expanduser() if env else Path.home() / ".intradayjules" / "integrity.key"


def _key(create: bool) -> bytes | None:
    path = key_file()
    if not path.exists():
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first
            return _key(create=False)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    st = path.stat()
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise IntegrityError(f"integrity key {path} is readable or writable by others (mode "
                             f"{stat.S_IMODE(st.st_mode):o}); chmod 600 it")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise IntegrityError(f"integrity key {path} belongs to uid {st.st_uid}, not to this user")
    text = path.read_text().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise IntegrityError(f"integrity key {path} is not a hex key of at least 16 bytes")
    return key


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _mac(key: bytes, path: Path) -> str:
    h = hmac.new(key, digestmod=hashlib.sha256)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def sig_path(path: str | Path) -> Path:
    p = Path(path)
    return p.with_name(p.name + SIG_SUFFIX)


def sign(path: str | Path) -> Path:
    """Write ``<path>.hmac`` for ``path`` (creating the key on first use); returns the sidecar."""
    path = Path(path)
    rec = {"alg": ALG, "hmac": _mac(_key(create=True), path), "bytes": path.stat().st_size, "file": path.name}
    side = sig_path(path)
    tmp = side.with_name(side.name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(rec))
    tmp.replace(side)
    return side


def signature_state(path: str | Path) -> str:
    """``"valid"``, ``"invalid"`` (a sidecar that does not match, or no key to check it) or ``"none"``."""
    path = Path(path)
    side = sig_path(path)
    if not side.is_file():
        return "none"
    try:
        rec = json.loads(side.read_text())
    except ValueError:
        return "invalid"
    key = _key(create=False)
    if key is None or rec.get("alg") != ALG:
        return "invalid"
    return "valid" if hmac.compare_digest(str(rec.get("hmac", "")), _mac(key, path)) else "invalid"


def verify(path: str | Path, what: str = "file", trust_pickle: bool = False) -> None:
    """Raise :class:`IntegrityError` unless ``path`` may be unpickled (rules in the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    state = signature_state(path)
    if state == "valid":
        return
    if state == "invalid":
        raise IntegrityError(
            f"{what} {path} does not match its signature {sig_path(path).name} (changed after it was written, "
            f"or signed with another key than {key_file()}); refusing to unpickle it")
    if not trust_pickle:
        raise IntegrityError(
            f"{what} {path} has no signature ({sig_path(path).name}): it was not written by this project under "
            f"your key, and loading it would unpickle (run) whatever it contains. Refusing. If you made this "
            "file yourself, pass --trust-pickle (trust_pickle=True)")
    side = path.with_name(path.name + ".sha256")
    if side.is_file():
        expected = (side.read_text().split() or [""])[0].lower()
        actual = _digest(path)
        if actual != expected:
            raise IntegrityError(f"{what} {path} failed its integrity check: sha256 is {actual}, {side.name} "
                                 f"records {expected or 'nothing'}; refusing to load it")


def load_sb3(path: str | Path, *, trust_pickle: bool = False, algo: str = "DQN", **kwargs: Any):
    """``DQN.load(path, **kwargs)`` (or another SB3 class) after :func:`verify`."""
    verify(path, "SB3 model", trust_pickle)
    import stable_baselines3

    cls = getattr(stable_baselines3, algo, None)
    if cls is None:
        import sb3_contrib

        cls = getattr(sb3_contrib, algo)
    return cls.load(str(path), **kwargs)


def load_replay_buffer(model: Any, path: str | Path, *, trust_pickle: bool = False) -> None:
    """``model.load_replay_buffer(path)`` after :func:`verify`."""
    verify(path, "replay buffer", trust_pickle)
    model.load_replay_buffer(str(path))


def save_signed(model: Any, path: str | Path) -> Path:
    """``model.save(path)`` and sign it."""
    path = Path(path)
    model.save(path)
    sign(path)
    return path


def save_replay_buffer_signed(model: Any, path: str | Path) -> Path:
    """Write the replay buffer atomically (``.tmp`` then rename), then sign it."""
    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    model.save_replay_buffer(tmp)
    tmp.replace(path)
    sign(path)
    return path


def sb3_num_timesteps(path: str | Path) -> int:
    """``num_timesteps`` from an SB3 zip's ``data`` (plain JSON; nothing unpickled)."""
    with zipfile.ZipFile(path) as z:
        data = json.loads(z.read("data"))
    return int(data.get("num_timesteps", 0))


def copy_weights(model: Any, path: str | Path, device: str | None = None) -> int:
    """Load the network tensors of SB3 zip ``path`` into ``model`` (``torch.load(weights_only=True)``
    inside SB3's ``set_parameters``); returns the donor's step count. Nothing is unpickled."""
    model.set_parameters(str(path), exact_match=True, device=device or model.device)
    return sb3_num_timesteps(path)
