"""The REST server speaks restic's protocol (v1 and v2) and refuses to delete or overwrite history."""

from __future__ import annotations

import hashlib
import http.client
import json
import os

import pytest
from backup_helpers import serving, tmpfs

from akm.backup.restserver import V2


def request(server, method, path, body=None, headers=None):
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def blob(content: bytes) -> tuple[str, bytes]:
    return hashlib.sha256(content).hexdigest(), content


@pytest.fixture
def created(server):
    assert request(server, "POST", "/r1/?create=true")[0] == 200
    assert request(server, "POST", "/r1/config", b"CONFIG")[0] == 200
    return server


def test_create_makes_the_local_backend_layout(created, tmp_path):
    restic_repo = tmp_path / "srv" / "r1"
    assert sorted(p.name for p in restic_repo.iterdir()) == ["config", "data", "index", "keys", "locks", "snapshots"]
    assert len(list((restic_repo / "data").iterdir())) == 256


def test_config_head_get_and_no_second_config(created):
    status, headers, _ = request(created, "HEAD", "/r1/config")
    assert status == 200 and headers["Content-Length"] == "6"
    assert request(created, "GET", "/r1/config")[2] == b"CONFIG"
    assert request(created, "POST", "/r1/config", b"OTHER")[0] == 403
    assert request(created, "GET", "/r1/config")[2] == b"CONFIG"


def test_list_v1_names_and_v2_names_with_sizes(created):
    name, content = blob(b"pack-bytes" * 100)
    assert request(created, "POST", f"/r1/data/{name}", content)[0] == 200
    status, headers, body = request(created, "GET", "/r1/data/")
    assert status == 200 and json.loads(body) == [name]
    status, headers, body = request(created, "GET", "/r1/data/", headers={"Accept": V2})
    assert headers["Content-Type"] == V2
    assert json.loads(body) == [{"name": name, "size": len(content)}]


def test_range_requests(created):
    name, content = blob(bytes(range(256)) * 10)
    request(created, "POST", f"/r1/index/{name}", content)
    status, headers, body = request(created, "GET", f"/r1/index/{name}", headers={"Range": "bytes=10-19"})
    assert status == 206 and body == content[10:20]
    assert headers["Content-Range"] == f"bytes 10-19/{len(content)}"
    assert request(created, "GET", f"/r1/index/{name}", headers={"Range": "bytes=2550-"})[2] == content[2550:]
    assert request(created, "GET", f"/r1/index/{name}", headers={"Range": "bytes=-5"})[2] == content[-5:]
    assert request(created, "GET", f"/r1/index/{name}", headers={"Range": "bytes=9999-"})[0] == 416


def test_append_only_refuses_overwrite_and_delete_but_allows_lock_removal(created, tmp_path):
    name, content = blob(b"snapshot")
    assert request(created, "POST", f"/r1/snapshots/{name}", content)[0] == 200
    assert request(created, "POST", f"/r1/snapshots/{name}", content)[0] == 403
    assert request(created, "DELETE", f"/r1/snapshots/{name}")[0] == 403
    assert request(created, "DELETE", "/r1/config")[0] == 403
    assert (tmp_path / "srv" / "r1" / "snapshots" / name).read_bytes() == content
    lock, lock_content = blob(b"lock")
    assert request(created, "POST", f"/r1/locks/{lock}", lock_content)[0] == 200
    assert request(created, "DELETE", f"/r1/locks/{lock}")[0] == 200
    assert request(created, "HEAD", f"/r1/locks/{lock}")[0] == 404


def test_delete_works_when_not_append_only(tmp_path):
    root = tmp_path / "open"
    root.mkdir()
    with serving(root, append_only=False) as srv:
        request(srv, "POST", "/?create=true")
        name, content = blob(b"snap")
        request(srv, "POST", f"/snapshots/{name}", content)
        assert request(srv, "DELETE", f"/snapshots/{name}")[0] == 200


def test_upload_whose_content_does_not_match_its_name_is_refused(created, tmp_path):
    name, _ = blob(b"the real content")
    assert request(created, "POST", f"/r1/keys/{name}", b"something else")[0] == 400
    assert os.listdir(tmp_path / "srv" / "r1" / "keys") == []


def test_paths_outside_the_root_are_refused(created):
    assert request(created, "GET", "/../etc/passwd")[0] == 404
    assert request(created, "GET", "/r1/data/..%2f..%2fetc")[0] == 404
    assert request(created, "GET", "/r1/keys/not-a-hash")[0] == 404


@pytest.mark.privileged
def test_full_disk_answers_507_and_leaves_no_partial_object(tmp_path):
    mount = tmpfs(tmp_path / "small", "1m")
    with mount as root, serving(root) as srv:
        request(srv, "POST", "/?create=true")
        name, content = blob(os.urandom(3 * 1024 * 1024))
        status, _, _body = request(srv, "POST", f"/data/{name}", content)
        assert status == 507
        leftovers = [f for _d, _s, files in os.walk(root) for f in files]
        assert leftovers == []


def test_with_users_each_client_uses_only_its_own_repository(tmp_path):
    import base64

    from akm.backup.restserver import RestServer, read_users

    users_file = tmp_path / "users"
    users_file.write_text(f"# host: sha256 of its token\nsrv:{hashlib.sha256(b'token-srv').hexdigest()}\n")
    root = tmp_path / "auth"
    root.mkdir()
    server = RestServer(root, users=read_users(users_file))
    server.start_thread()
    try:

        def auth(user, password):
            return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

        assert request(server, "POST", "/srv/?create=true")[0] == 401
        assert request(server, "POST", "/srv/?create=true", headers=auth("srv", "wrong"))[0] == 401
        assert request(server, "POST", "/srv/?create=true", headers=auth("srv", "token-srv"))[0] == 200
        assert request(server, "GET", "/other/keys/", headers=auth("srv", "token-srv"))[0] == 403
        assert request(server, "POST", "/?create=true", headers=auth("srv", "token-srv"))[0] == 403
        assert request(server, "GET", "/srv/keys/", headers=auth("srv", "token-srv"))[0] == 200
    finally:
        server.shutdown()
        server.server_close()


def test_bad_users_file_line_is_located(tmp_path):
    from akm.backup.restserver import read_users

    users_file = tmp_path / "users"
    users_file.write_text("srv:not-a-hash\n")
    with pytest.raises(ValueError, match=r"users:1:"):
        read_users(users_file)
