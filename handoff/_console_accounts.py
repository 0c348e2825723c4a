"""Console routes for admins: the accounts of their MRC (or all, for an admin without one)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from handoff._accounts import create_account, disable_account, enable_account, list_accounts, manageable_account
from handoff._audit import audit
from handoff._console_kit import Ctx, Db, Me, clip, mrcs_in_scope, redirect, render, require
from handoff._enums import AuditAction
from handoff._errors import AccountError, InvalidState, NotAllowed, RoleNotGrantable
from handoff._policy import can_manage_account, can_manage_accounts

__all__ = ["router"]

router = APIRouter()

Text = Annotated[str, Form()]


@router.get("/accounts", name="accounts")
async def accounts_page(request: Request, ctx: Ctx, db: Db, me: Me, error: str = "") -> Response:
    require(can_manage_accounts(me))
    accounts = await list_accounts(session=db, mrc_id=me.mrc_id)
    return render(request, "accounts.html", accounts=accounts, error=error, mrcs=mrcs_in_scope(ctx, me))


@router.post("/accounts", name="account_add")
async def add_account(request: Request, ctx: Ctx, db: Db, me: Me, username: Text = "", display_name: Text = "",
                      password: Text = "", role: Text = "", mrc_id: Text = "") -> Response:
    require(can_manage_accounts(me))
    mrc = clip(mrc_id, 64) or None
    if not can_manage_account(me, mrc):
        raise NotAllowed("you can only create accounts for your own MRC")
    try:
        await create_account(
            session=db,
            username=clip(username, 64),
            display_name=clip(display_name, 100),
            password=clip(password, 1024),
            role=clip(role, 16),
            mrc_id=mrc,
            known_mrc_ids=ctx.settings.mrc_ids,
            min_password_length=ctx.settings.min_password_length,
            actor=me,
        )
    except AccountError as exc:
        await db.rollback()  # a refused account leaves nothing behind but the audit entry below
        if isinstance(exc, RoleNotGrantable):
            await audit(db, me, AuditAction.ACCOUNT_ADD, mrc_id=mrc,
                        detail=f"refused: {me.username} may not create a {clip(role, 16)} account")
        accounts = await list_accounts(session=db, mrc_id=me.mrc_id)
        return render(request, "accounts.html", status_code=400, accounts=accounts, error=str(exc),
                      mrcs=mrcs_in_scope(ctx, me))
    return redirect(request, "accounts", notice="account_added")


@router.post("/accounts/{account_id}/disable", name="account_disable")
async def disable(request: Request, db: Db, account_id: int, me: Me) -> Response:
    require(can_manage_accounts(me))
    account = await manageable_account(session=db, actor=me, account_id=account_id)
    if account.id == me.id:
        raise InvalidState("you cannot disable your own account")
    await disable_account(session=db, username=account.username, actor=me)
    return redirect(request, "accounts", notice="account_disabled")


@router.post("/accounts/{account_id}/enable", name="account_enable")
async def enable(request: Request, db: Db, account_id: int, me: Me) -> Response:
    require(can_manage_accounts(me))
    account = await manageable_account(session=db, actor=me, account_id=account_id)
    await enable_account(session=db, username=account.username, actor=me)
    return redirect(request, "accounts", notice="account_enabled")
