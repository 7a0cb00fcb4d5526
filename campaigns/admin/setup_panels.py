"""The campaign page's set-up and delivery panels: reach per target and channel, overlap with the
running campaigns, each target's message for a real member with a test send, and, once activated,
what happened (sends by status, exclusions, where each hand-off went)."""

from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from accounts.admin_base import admin_datetime, post_button
from campaigns.activation import campaign_forecast
from campaigns.models import Campaign, Handoff, Touch
from campaigns.setup_aids import campaign_overlap, message_preview


def page_forecast(campaign: Campaign) -> dict:
    """The activation's forecast, counted once for every panel of the page (kept on the campaign
    the admin loaded for this request): the reach table and the cost estimate read the same."""
    if not hasattr(campaign, "_forecast"):
        campaign._forecast = campaign_forecast(campaign=campaign)  # type: ignore[attr-defined]
    return campaign._forecast  # type: ignore[attr-defined]


def _reach_table(campaign: Campaign) -> SafeString:
    forecast = page_forecast(campaign)
    rows = []
    for target in forecast["targets"]:
        if target["members"] is None:
            rows.append(
                (
                    target["variant"] or "-",
                    _("triggered by %(event)s") % {"event": target["triggered_by"]},
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                )
            )
            continue
        if not target["audience_computed"]:
            rows.append((target["variant"] or "-", _("audience not computed yet"), "", "", "", "", "", "", ""))
            continue
        for channel in target["channels"] or [{"channel": "-"}]:
            rows.append(
                (
                    target["variant"] or "-",
                    target["members"],
                    target["excluded_by_experiment"],
                    channel["channel"],
                    channel.get("excluded_by_consent", ""),
                    channel.get("excluded_by_suppression", ""),
                    channel.get("excluded_by_area", ""),
                    channel.get("excluded_by_caps", ""),
                    channel.get("will_receive", ""),
                )
            )
    head = [
        _("Variant"),
        _("Audience"),
        _("Control group and other variants"),
        _("Channel"),
        _("Without consent"),
        _("Suppressed"),
        _("Outside the area"),
        _("Held by a frequency cap"),
        _("Would receive it"),
    ]
    return format_html(
        '<table class="cible-kpis" id="cible-reach"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>'
        "<p><strong>{}</strong></p>",
        format_html_join("", "<th>{}</th>", ((h,) for h in head)),
        format_html_join("", "<tr>" + "<td>{}</td>" * 9 + "</tr>", rows),
        _("In all, %(n)s messages would go out if it were activated now.") % {"n": forecast["will_receive"]},
    )


def _overlap(campaign: Campaign) -> SafeString:
    rows = campaign_overlap(campaign=campaign)
    if not rows:
        return format_html("<p>{}</p>", _("No other campaign is running or scheduled."))
    return format_html(
        '<ul id="cible-overlap">{}</ul>',
        format_html_join(
            "",
            '<li><a href="{}">{}</a>: {}</li>',
            (
                (
                    reverse("admin:campaigns_campaign_change", args=[row["campaign"].pk]),
                    row["campaign"].name,
                    _("%(n)s people in common (shared channels: %(channels)s)")
                    % {"n": row["shared"], "channels": ", ".join(row["channels"]) or _("none")},
                )
                for row in rows
            ),
        ),
    )


def _previews(campaign: Campaign, can_write: bool) -> SafeString:
    parts = []
    for target in campaign.targets.select_related("segment__audience", "campaign").order_by("pk"):
        preview = message_preview(target=target)
        if preview is None:
            parts.append(
                format_html("<p><strong>{}</strong>: {}</p>", target.variant or target, _("nobody to show it for yet."))
            )
            continue
        send = ""
        if can_write:
            send = format_html_join(
                " ",
                "{}",
                (
                    (
                        post_button(
                            name=f"test-{target.pk}-{channel}",
                            label=_("Send me a test (%(channel)s)") % {"channel": channel},
                            url=reverse("admin:campaigns_campaign_test_send", args=[campaign.pk])
                            + f"?target={target.pk}&channel={channel}",
                        ),
                    )
                    for channel in campaign.channels
                ),
            )
        parts.append(
            format_html(
                '<div class="cible-preview" data-target="{}"><p><strong>{}</strong> · {} {}</p>'
                "<p><em>{}</em></p><pre>{}</pre><p>{}</p></div>",
                target.pk,
                target.variant or target.segment,
                _("for"),
                preview["profile"],
                preview["subject"],
                preview["body"],
                send,
            )
        )
    return format_html_join("", "{}", ((p,) for p in parts))


def setup_panel(campaign: Campaign, *, can_write: bool) -> SafeString:
    return format_html(
        '<div id="cible-setup"><h3>{}</h3>{}<h3>{}</h3>{}<h3>{}</h3>{}<p><a href="{}">{}</a></p></div>',
        _("Reach, target by target"),
        _reach_table(campaign),
        _("Overlap with the other campaigns"),
        _overlap(campaign),
        _("The message, for a real member"),
        _previews(campaign, can_write),
        reverse("admin:campaigns_campaign_calendar"),
        _("The campaigns' calendar"),
    )


def delivery_panel(campaign: Campaign) -> SafeString:
    """What the activation did: sends by target, channel and status, and each hand-off."""
    counts = (
        Touch.objects.filter(campaign=campaign)
        .values("target__variant", "channel", "status")
        .annotate(n=Count("*"))
        .order_by("target__variant", "channel", "status")
    )
    labels = dict(Touch.Status.choices)
    sends = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (row["target__variant"] or "-", row["channel"], labels.get(row["status"], row["status"]), row["n"])
            for row in counts
        ),
    )
    handoffs = Handoff.objects.filter(campaign=campaign).order_by("-created_at")[:20]
    went = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                admin_datetime(h.created_at),
                h.channel,
                h.get_kind_display(),
                h.touches,
                h.get_status_display(),
                h.file.name if h.file else (h.error or "-"),
            )
            for h in handoffs
        ),
    )
    return format_html(
        '<div id="cible-delivery"><table class="cible-kpis" id="cible-sends"><thead><tr><th>{}</th><th>{}</th><th>{}</th>'
        "<th>{}</th></tr></thead><tbody>{}</tbody></table>"
        '<table class="cible-kpis" id="cible-handoffs"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>'
        "<th>{}</th></tr></thead><tbody>{}</tbody></table><h3>{}</h3>{}</div>",
        _("Variant"),
        _("Channel"),
        _("Status"),
        _("Messages"),
        sends or format_html('<tr><td colspan="4">{}</td></tr>', _("Nothing sent yet.")),
        _("When"),
        _("Channel"),
        _("Hand-off"),
        _("Messages"),
        _("Status"),
        _("File or error"),
        went or format_html('<tr><td colspan="6">{}</td></tr>', _("No hand-off yet.")),
        _("Who it leaves out now"),
        _reach_table(campaign),
    )
