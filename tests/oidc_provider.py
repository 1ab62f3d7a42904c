"""A minimal OpenID Connect provider for tests, on loopback, with no network beyond it.

Endpoints: discovery (/.well-known/openid-configuration), /authorize (approves the configured
test user at once and redirects back with a code), /token (authorization code -> RS256-signed
id_token signed with authlib.jose, client secret checked, PKCE S256 verified), /jwks, /userinfo
and /logout (end_session: redirects to post_logout_redirect_uri). One user at a time:
`provider.user = {...}` sets the claims of whoever "signs in" next.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

from authlib.jose import JsonWebKey, jwt


class OidcProvider:
    def __init__(self, client_id: str, client_secret: str, user: dict):
        self.client_id = client_id
        self.client_secret = client_secret
        self.user = dict(user)
        self.key = JsonWebKey.generate_key("RSA", 2048, is_private=True, options={"kid": "k1"})
        self.codes: dict[str, dict] = {}
        self.log: list[str] = []  # paths requested, for assertions
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OidcProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def metadata(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "end_session_endpoint": f"{self.issuer}/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile", "groups"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "email", "email_verified", "name", "groups"],
        }

    def id_token(self, nonce: str | None) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": self.user.get("sub", self.user["email"]),
            "aud": self.client_id,
            "iat": now,
            "exp": now + 600,
            "email_verified": True,
            **self.user,
        }
        if nonce:
            claims["nonce"] = nonce
        token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.key)
        return token.decode() if isinstance(token, bytes) else token

    def _handler(self):
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet test output
                pass

            def _json(self, body: dict, status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _redirect(self, url: str) -> None:
                self.send_response(302)
                self.send_header("Location", url)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                url = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                provider.log.append(url.path)
                if url.path == "/.well-known/openid-configuration":
                    self._json(provider.metadata())
                elif url.path == "/jwks":
                    self._json({"keys": [provider.key.as_dict(is_private=False)]})
                elif url.path == "/authorize":
                    if q.get("client_id") != provider.client_id:
                        self._json({"error": "unauthorized_client"}, 400)
                        return
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = q
                    back = {"code": code, "state": q.get("state", "")}
                    self._redirect(f"{q['redirect_uri']}?{urlencode(back)}")
                elif url.path == "/userinfo":
                    self._json({"sub": provider.user["email"], **provider.user})
                elif url.path == "/logout":
                    target = q.get("post_logout_redirect_uri")
                    if target:
                        self._redirect(target)
                    else:
                        self._json({"logged_out": True})
                else:
                    self._json({"error": "not_found"}, 404)

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                url = urlparse(self.path)
                provider.log.append(url.path)
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if url.path != "/token":
                    self._json({"error": "not_found"}, 404)
                    return
                client_id, secret = form.get("client_id"), form.get("client_secret")
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
                if client_id != provider.client_id or secret != provider.client_secret:
                    self._json({"error": "invalid_client"}, 401)
                    return
                request = provider.codes.pop(form.get("code", ""), None)
                if request is None or form.get("redirect_uri") != request.get("redirect_uri"):
                    self._json({"error": "invalid_grant"}, 400)
                    return
                challenge = request.get("code_challenge")
                if challenge:
                    verifier = form.get("code_verifier", "").encode()
                    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest())
                    if digest.rstrip(b"=").decode() != challenge:
                        self._json({"error": "invalid_grant", "error_description": "pkce"}, 400)
                        return
                self._json(
                    {
                        "access_token": secrets.token_urlsafe(16),
                        "token_type": "Bearer",
                        "expires_in": 600,
                        "id_token": provider.id_token(request.get("nonce")),
                    }
                )

        return Handler
