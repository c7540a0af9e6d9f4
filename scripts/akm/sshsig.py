"""OpenSSH public keys and signatures: public key lines, the SSHSIG format, and signing and verifying
with ssh-keygen.

Signing and verifying are done by OpenSSH's own ``ssh-keygen -Y sign`` and ``ssh-keygen -Y verify``
(OpenSSH 8.1 or later; Debian 12 has 9.2), never by code of ours: ssh-keygen is on every Debian host
(``openssh-client``), it is the tool a director already uses for her SSH key (passphrase, agent,
hardware token), and it checks the signature, the namespace and that the key is the named signer's in
one place that the OpenSSH project maintains (docs/dependencies.md says why no Python crypto library).

What this module reads itself, without any cryptography, is only the *form* of a public key and of a
signature (``PROTOCOL.sshsig`` in the OpenSSH sources): which key a signature says it was made with and
in which namespace. That lets a check say precisely why a signature is refused (another person's key, a
key nobody has, a signature made for something else) before ssh-keygen says whether it is valid. The
same reading of a public key line (:func:`read_key_line`) checks the host keys the inventory pins.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import subprocess
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from akm.errors import Error
from akm.i18n import _

KEY_TYPE = "ssh-ed25519"
ARMOUR_BEGIN = "-----BEGIN SSH SIGNATURE-----"
ARMOUR_END = "-----END SSH SIGNATURE-----"
_MAGIC = b"SSHSIG"


class SshSigError(Error):
    """ssh-keygen is missing or could not sign; the message says what to do."""


@dataclass(frozen=True)
class PublicKey:
    """A public key as OpenSSH writes it: ``TYPE BASE64 [comment]`` (``ssh-ed25519`` unless said)."""

    blob: bytes
    comment: str = ""
    type: str = KEY_TYPE

    @property
    def text(self) -> str:
        """The key without its comment, as ``allowed_signers``, ``authorized_keys`` and ``known_hosts``
        want it."""
        return f"{self.type} {base64.b64encode(self.blob).decode()}"

    @property
    def fingerprint(self) -> str:
        """``SHA256:…``, the fingerprint ``ssh-keygen -l`` prints for the key."""
        return "SHA256:" + base64.b64encode(hashlib.sha256(self.blob).digest()).decode().rstrip("=")


@dataclass(frozen=True)
class Signature:
    """What an armoured SSH signature says about itself: the key that made it and its namespace."""

    public_key: bytes
    namespace: str
    blob: bytes


def _strings(data: bytes, offset: int = 0) -> list[bytes]:
    """Split SSH wire-format strings (4-byte big-endian length, then the bytes) from *offset* to the end."""
    found = []
    while offset < len(data):
        if offset + 4 > len(data):
            raise ValueError("truncated")
        size = int.from_bytes(data[offset : offset + 4], "big")
        offset += 4
        if offset + size > len(data):
            raise ValueError("truncated")
        found.append(data[offset : offset + size])
        offset += size
    return found


KEY_FIELDS = {
    "ssh-ed25519": 2,
    "ecdsa-sha2-nistp256": 3,
    "ecdsa-sha2-nistp384": 3,
    "ecdsa-sha2-nistp521": 3,
    "ssh-rsa": 3,
}
"""The public key types read (those OpenSSH offers as host keys by default), with the number of wire
strings their blob holds: the type and the key (ed25519), the type, curve and point (ecdsa), the type,
exponent and modulus (rsa)."""


def read_key_line(text: str, types: Iterable[str] = KEY_FIELDS) -> PublicKey:
    """Read a public key line of one of *types*; raise ``ValueError`` with a sentence a person can act on.

    The blob must hold what its type says (the type repeated, then its fields), an ed25519 key exactly
    32 bytes: a line cut short while pasting is refused here, not when a connection fails.
    """
    types = tuple(types)
    parts = text.strip().split(None, 2)
    if len(parts) < 2 or parts[0] not in types:
        raise ValueError(_("it is not a public key line ({types} AAAA…)").format(types=" | ".join(types)))
    try:
        blob = base64.b64decode(parts[1], validate=True)
        fields = _strings(blob)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(_("the key's base64 text is damaged or cut short")) from exc
    inner = fields[0].decode(errors="replace") if fields else ""
    if inner != parts[0]:
        raise ValueError(
            _("the line says {type} but its base64 text holds {inner!r}").format(type=parts[0], inner=inner)
        )
    if len(fields) != KEY_FIELDS[parts[0]] or (parts[0] == KEY_TYPE and len(fields[1]) != 32):
        raise ValueError(_("the key's base64 text does not hold a whole {type} key").format(type=parts[0]))
    return PublicKey(blob, parts[2].strip() if len(parts) > 2 else "", parts[0])


def read_public_key(text: str) -> PublicKey:
    """Read an ed25519 public key line; raise ``ValueError`` with a sentence a person can act on."""
    if text.strip().split(None, 1)[:1] != [KEY_TYPE]:
        raise ValueError(_("it is not an ed25519 public key line (ssh-ed25519 AAAA…)"))
    return read_key_line(text, (KEY_TYPE,))


def read_signature(armoured: str) -> Signature:
    """Read the form of an armoured SSH signature; raise ``ValueError`` if it is not one."""
    text = armoured.strip()
    if not (text.startswith(ARMOUR_BEGIN) and text.endswith(ARMOUR_END)):
        raise ValueError(
            _("it does not start with {begin} and end with {end}").format(begin=ARMOUR_BEGIN, end=ARMOUR_END)
        )
    body = "".join(text[len(ARMOUR_BEGIN) : -len(ARMOUR_END)].split())
    try:
        blob = base64.b64decode(body, validate=True)
        if not blob.startswith(_MAGIC) or int.from_bytes(blob[6:10], "big") != 1:
            raise ValueError("not SSHSIG version 1")
        public_key, namespace, _reserved, _hash, _signature = _strings(blob, 10)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(_("the signature's base64 text is damaged or cut short")) from exc
    return Signature(public_key, namespace.decode(errors="replace"), blob)


def _ssh_keygen(args: list[str], message: bytes | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["ssh-keygen", *args], input=message, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise SshSigError.one(
            "sshsig.no-ssh-keygen",
            _("ssh-keygen (OpenSSH) is not installed, so signatures cannot be made or checked"),
            _("install it: apt install openssh-client"),
            file="ssh-keygen",
        ) from exc


def _key_error(code: str, message: str, hint: str, key: Path) -> SshSigError:
    return SshSigError.one(code, message, hint, file=str(key), field="--key")


def public_key_of(key: Path) -> PublicKey:
    """The public half of the key file *key*: the file itself if it is a ``.pub``, else ``KEY.pub`` beside
    it, else what ``ssh-keygen -y`` derives from the private key (it asks for a passphrase if there is one)."""
    public = key if key.suffix == ".pub" else key.with_name(key.name + ".pub")
    reason = ""
    if public.is_file():
        text = public.read_text(encoding="utf-8")
    elif key.is_file():
        result = _ssh_keygen(["-y", "-f", str(key)])
        text = result.stdout.decode() if result.returncode == 0 else ""
        reason = _last_line(result.stderr) if result.returncode != 0 else ""
    else:
        raise _key_error(
            "sshsig.no-key",
            _("there is no key file {path}").format(path=key),
            _("give the private key with --key, e.g. --key ~/.ssh/id_ed25519"),
            key,
        )
    try:
        return read_public_key(text)
    except ValueError as exc:
        raise _key_error(
            "sshsig.bad-key",
            _("the public key of {path} cannot be read: {reason}").format(path=key, reason=reason or exc),
            _("give an ed25519 private key made with ssh-keygen -t ed25519"),
            key,
        ) from exc


def _last_line(output: bytes) -> str:
    lines = [line for line in output.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "?"


def sign(message: bytes, key: Path, namespace: str) -> str:
    """Sign *message* with the key file *key* (a private key, or a ``.pub`` whose key is in ssh-agent) in
    *namespace*; return the armoured signature. ssh-keygen asks for the passphrase on the terminal."""
    result = _ssh_keygen(["-Y", "sign", "-f", str(key), "-n", namespace], message)
    if result.returncode != 0:
        raise _key_error(
            "sshsig.sign-failed",
            _("ssh-keygen could not sign: {reason}").format(reason=_last_line(result.stderr)),
            _("check the key file and its passphrase; a .pub file needs its key loaded in ssh-agent"),
            key,
        )
    return result.stdout.decode()


def verify(items: Iterable[tuple[bytes, str, str]], signers: dict[str, PublicKey], namespace: str) -> list[bool]:
    """Check each ``(message, armoured signature, signer)`` of *items* with ``ssh-keygen -Y verify``.

    *signers* maps each allowed signer to their key; it is written once into one ``allowed_signers``
    file for the whole batch (every key limited to *namespace*), then ssh-keygen runs once per item, as
    many at a time as there are processors (each run is about 10 ms, nearly all of it starting the
    process). Returns, in order, whether each signature is valid, made by its signer's key, in *namespace*.
    """
    items = list(items)
    if not items:
        return []
    with tempfile.TemporaryDirectory(prefix="akm-sshsig-") as tmp:
        allowed = Path(tmp) / "allowed_signers"
        allowed.write_text(
            "".join(f'{name} namespaces="{namespace}" {key.text}\n' for name, key in sorted(signers.items())),
            encoding="utf-8",
        )

        def valid(number: int) -> bool:
            message, armoured, signer = items[number]
            signature = Path(tmp) / f"{number}.sig"
            signature.write_text(armoured, encoding="utf-8")
            result = _ssh_keygen(
                ["-Y", "verify", "-f", str(allowed), "-I", signer, "-n", namespace, "-s", str(signature)], message
            )
            return result.returncode == 0

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            return list(pool.map(valid, range(len(items))))
