"""The truth: who everyone really is, what they did and will do, for the later stages to be measured against."""

from __future__ import annotations

from datetime import timedelta

from local.sim import catalog as cat
from local.sim.models import (
    AliasLink,
    FuturePurchase,
    Identifiers,
    JunkUse,
    SharedDevice,
    Truth,
    TruthDevice,
    TruthEvent,
    TruthOrder,
    TruthPerson,
)
from local.sim.people import Device, Person
from local.sim.shop import ShopBuilder
from local.sim.wire import Wire


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def build_truth(shop: ShopBuilder, wire: Wire) -> Truth:
    config = shop.config
    devices: dict[str, Device] = {}
    users: dict[str, list[str]] = {}  # anonymous id -> person ids who used it
    for anon, events in shop.device_events.items():
        device = events[0].device
        assert device is not None
        devices[anon] = device
        users[anon] = _unique([e.person.pid for e in sorted(events, key=lambda e: e.time)])
    person_devices: dict[str, list[str]] = {}
    for anon, pids in users.items():
        for pid in pids:
            person_devices.setdefault(pid, []).append(anon)

    events: list[TruthEvent] = []
    for draft in wire.drafts:  # the originals: retries and bad input are not events of the shop
        for ev in draft.events:
            events.append(
                TruthEvent(
                    message_id=ev.msg["messageId"],
                    person_id=ev.person.pid,
                    anonymous_id=ev.msg.get("anonymousId"),
                    user_id=None if ev.msg.get("userId") is None else str(ev.msg["userId"]),
                    call=ev.msg["type"],
                    name=ev.msg.get("event") or ev.msg.get("name"),
                    time=ev.time,
                    tables=list(ev.tables),
                )
            )
    events.sort(key=lambda e: (e.time, e.message_id))

    people = [_person(p, shop, person_devices.get(p.pid, [])) for p in shop.people]
    groups: dict[str, list[str]] = {}
    for p in shop.people:
        groups.setdefault(p.group, []).append(p.pid)
    return Truth(
        seed=config.seed,
        start=shop.start,
        end=shop.end,
        future_end=shop.end + timedelta(days=config.future_days),
        write_key=config.write_key,
        site=cat.SITE,
        people=people,
        devices=[
            TruthDevice(
                anonymous_id=anon,
                kind=d.kind,
                user_agent=d.ua,
                ip=d.ip,
                clock_skew_seconds=d.skew,
                owner=d.owner.pid,
                shared_by=users[anon] if len(users[anon]) > 1 else [],
                linked_by=list(d.linked_by),
                junk_user_id=d.junk,
                sessions=d.sessions,
            )
            for anon, d in devices.items()
        ],
        groups=groups,
        shared_devices=[
            SharedDevice(anonymous_id=anon, person_ids=pids) for anon, pids in users.items() if len(pids) > 1
        ],
        junk_identifiers=[
            JunkUse(value=value, field=where, person_ids=list(pids), calls=calls[0])
            for (value, where), (pids, calls) in shop.junk.items()
        ],
        aliases=[
            AliasLink(previous_id=prev, user_id=uid, person_id=pid, source=source)
            for prev, uid, pid, source in shop.aliases
        ],
        events=events,
    )


def _person(p: Person, shop: ShopBuilder, anons: list[str]) -> TruthPerson:
    mobile_sent = [f for f in p.phone_sent if f in p.phone_forms]
    landline_sent = [f for f in p.phone_sent if f in p.landline_forms]
    phones = ([p.phone_e164] if mobile_sent and p.phone_e164 else []) + (
        [p.landline_e164] if landline_sent and p.landline_e164 else []
    )
    chance, future = shop.future[p.pid]
    return TruthPerson(
        person_id=p.pid,
        group=p.group,
        market=p.market,
        country=p.city.country,
        city=p.city.city,
        name=p.name,
        gender=p.gender,
        birth_year=p.birth_year,
        email=p.email,
        phone=p.phone_e164,
        landline=p.landline_e164,
        address=p.address_text,
        user_id=p.user_id,
        legacy_user_id=p.legacy_user_id,
        crm_id=p.crm_id,
        member_since=p.member_since,
        signed_up_in_window=p.signs_up and p.user_id is not None,
        guest_orders=p.guest_orders,
        store_customer=p.crm_id is not None,
        web_visitor=p.web,
        identifiers=Identifiers(
            user_ids=[i for i in (p.user_id, p.legacy_user_id) if i],
            anonymous_ids=anons,
            emails=[p.email] if p.email and p.email_sent else [],
            phones=phones,
            crm_ids=[p.crm_id] if p.crm_id else [],
            email_forms_sent=_unique(p.email_sent),
            phone_forms_sent=_unique(p.phone_sent),
        ),
        devices=anons,
        first_seen=p.first_seen,
        last_seen=p.last_seen,
        sessions=p.sessions,
        events=p.events,
        orders=[TruthOrder(**o) for o in sorted(p.orders, key=lambda o: o["time"])],
        future_purchases=[FuturePurchase(time=t, revenue=r, currency=c, channel=ch) for t, r, c, ch in future],
        buys_next_30d=bool(future),
        purchase_propensity=chance,
    )
