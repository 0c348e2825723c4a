"""Console routes: signing in and out."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from handoff._auth import (
    LoginFailed,
    SignedIn,
    authenticate,
    create_session,
    device_cookie_value,
    device_id_from_cookie,
    end_session,
    login_csrf_token,
)
from handoff._console_kit import (
    Ctx,
    Db,
    clip,
    console_context,
    console_url,
    cookie_path,
    redirect,
    render,
    signed_in,
)
from handoff._errors import LoginThrottled
from handoff._web import DEVICE_COOKIE, LOGIN_NONCE_COOKIE, SESSION_COOKIE, safe_next

__all__ = ["router"]

router = APIRouter()


def _secure(request: Request) -> bool:
    """Cookies get ``Secure`` when configured so or when this request came over HTTPS."""
    return console_context(request).settings.cookie_secure or request.url.scheme == "https"


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _throttled_text(seconds: float) -> str:
    return f"Too many failed attempts. Wait {int(seconds)} seconds and try again."


def _login_throttled(response: Response, seconds: float) -> Response:
    response.headers["Retry-After"] = str(max(1, int(seconds)))
    return response


def _login_page(request: Request, *, error: str = "", status_code: int = 200, username: str = "") -> Response:
    ctx = console_context(request)
    nonce = request.cookies.get(LOGIN_NONCE_COOKIE) or secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        status_code=status_code,
        error=error,
        username=username,
        login_csrf=login_csrf_token(ctx.secret, nonce),
        next=request.query_params.get("next", ""),
    )
    response.set_cookie(LOGIN_NONCE_COOKIE, nonce, path=cookie_path(request), httponly=True,
                        secure=_secure(request), samesite="strict")
    return response


@router.get("/login", name="login")
async def login_form(request: Request) -> Response:
    return _login_page(request)


def _signed_in_response(request: Request, ctx: Ctx, username: str, token: str, next_path: str) -> Response:
    home = console_url(request, "queue").rstrip("/")
    response = RedirectResponse(safe_next(home, next_path), status_code=303)
    cookie = {"path": cookie_path(request), "httponly": True, "secure": _secure(request)}
    response.set_cookie(SESSION_COOKIE, token, samesite="lax", **cookie)  # type: ignore[arg-type]
    if device_id_from_cookie(ctx.secret, username, request.cookies.get(DEVICE_COOKIE)) is None:
        response.set_cookie(
            DEVICE_COOKIE,
            device_cookie_value(ctx.secret, username),
            max_age=180 * 24 * 3600,
            samesite="strict",
            **cookie,  # type: ignore[arg-type]
        )
    response.delete_cookie(LOGIN_NONCE_COOKIE, path=cookie_path(request))
    return response


@router.post("/login", name="login_submit")
async def login(
    request: Request,
    ctx: Ctx,
    db: Db,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next_path: Annotated[str, Form(alias="next")] = "",
) -> Response:
    username = clip(username, 64).strip().lower()
    client = _client(request)
    # A browser that signed in to this account before is exempt from the address and account
    # ceilings (its own throttle bucket still applies): an attacker guessing from many
    # addresses, or spraying usernames from one, cannot lock a counsellor out of their browser.
    trusted = device_id_from_cookie(ctx.secret, username, request.cookies.get(DEVICE_COOKIE)) is not None
    if not trusted:
        wait = await ctx.limiter.hit("login_address", client) or await ctx.limiter.test("login_account", username)
        if wait:
            return _login_throttled(_login_page(request, error=_throttled_text(wait), status_code=429,
                                                username=username), wait)
    try:
        counsellor = await authenticate(session=db, settings=ctx.settings, username=username,
                                        password=clip(password, 1024), client_address=client,
                                        device_cookie=request.cookies.get(DEVICE_COOKIE))
        # A fresh token on every sign-in; any session this browser had before ends.
        await end_session(session=db, token=request.cookies.get(SESSION_COOKIE))
        token = await create_session(session=db, settings=ctx.settings, counsellor=counsellor)
    except LoginThrottled as exc:
        await db.commit()  # the failed attempt counts
        return _login_throttled(_login_page(request, error=_throttled_text(exc.retry_after_seconds),
                                            status_code=429, username=username), exc.retry_after_seconds)
    except LoginFailed:
        await db.commit()  # the failed attempt counts
        if not trusted:
            await ctx.limiter.hit("login_account", username)
        return _login_page(request, error="Wrong username or password.", status_code=401, username=username)
    await db.commit()
    return _signed_in_response(request, ctx, username, token, clip(next_path, 500))


@router.post("/logout", name="logout")
async def logout(request: Request, db: Db, who: Annotated[SignedIn, Depends(signed_in)]) -> Response:
    await end_session(session=db, token=request.cookies.get(SESSION_COOKIE), actor=who.actor)
    response = redirect(request, "login")
    response.delete_cookie(SESSION_COOKIE, path=cookie_path(request))
    return response
