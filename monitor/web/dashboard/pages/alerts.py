"""Alerts: firing, pending, resolved history, the notification log ("did the page go out?") and
silences, read through `alerts_data.alerts_view` (which says so when evaluation is turned off)."""
from __future__ import annotations

import dash
from dash import Input, Output, html

from monitor.web.context import current_context
from monitor.web.views import alerts as alerts_data
from .. import ids, registry
from ..layout import card, empty_state, table


ALERT_COLUMNS = [("alertname", "alert"), ("severity", "severity"), ("labels", "labels"),
                 ("value", "value"), ("since", "active since"), ("summary", "summary")]
RESOLVED_COLUMNS = [("alertname", "alert"), ("severity", "severity"), ("labels", "labels"),
                    ("since", "active since"), ("resolved", "resolved"), ("summary", "summary")]
SILENCE_COLUMNS = [("matchers", "matchers"), ("state", "state"), ("starts", "starts"),
                   ("ends", "ends"), ("created_by", "created by"), ("comment", "comment"),
                   ("id", "id")]
NOTIFICATION_COLUMNS = [("time", "queued"), ("receiver", "receiver"), ("status", "status"),
                        ("alerts", "alerts"), ("attempts", "attempts"), ("result", "result"),
                        ("error", "error")]
RESOLVED_LIMIT = 500


def layout(**_params):
    return html.Div([
        html.H1(["Alerts", html.Span(id="al-sub", className="ss-page-sub")], className="ss-page-title"),
        html.Div(id=ids.AL_NOTICE),
        card("Firing", [table(ids.AL_FIRING, ALERT_COLUMNS, page_size=15),
                        html.Div(id="al-firing-none", className="ss-hint")]),
        card("Pending", [table(ids.AL_PENDING, ALERT_COLUMNS, page_size=15),
                         html.Div(id="al-pending-none", className="ss-hint")],
             extra="condition true, waiting for its 'for' duration"),
        card("Notifications", [table(ids.AL_NOTIFICATIONS, NOTIFICATION_COLUMNS, page_size=15,
                                     numeric=("attempts",)),
                               html.Div(id="al-notifications-none", className="ss-hint")],
             extra="newest first: what went to which receiver, and whether it arrived"),
        card("Resolved (history)", [table(ids.AL_RESOLVED, RESOLVED_COLUMNS, page_size=15),
                                    html.Div(id="al-resolved-none", className="ss-hint")]),
        card("Silences", [table(ids.AL_SILENCES, SILENCE_COLUMNS, page_size=15, level_column=False),
                          html.Div(id="al-silences-none", className="ss-hint")]),
    ])


@dash.callback(
    Output(ids.AL_NOTICE, "children"), Output("al-sub", "children"),
    Output(ids.AL_FIRING, "data"), Output(ids.AL_PENDING, "data"),
    Output(ids.AL_RESOLVED, "data"), Output(ids.AL_SILENCES, "data"), Output(ids.AL_NOTIFICATIONS, "data"),
    Output("al-firing-none", "children"), Output("al-pending-none", "children"),
    Output("al-resolved-none", "children"), Output("al-silences-none", "children"),
    Output("al-notifications-none", "children"),
    Input(ids.INTERVAL, "n_intervals"),
)
def update(_n):
    view = alerts_data.alerts_view(current_context())
    notices = []
    if not view.configured:
        notices.append(empty_state(view.notice or alerts_data.ALERTING_NOTICE, title="Alert evaluation is off"))
    if view.error:
        notices.append(html.Div(view.error, className="ss-error"))
    sub = (f"{len(view.firing)} firing · {len(view.pending)} pending · {len(view.silences)} silences"
           if view.configured else "alert evaluation is off")

    def none(rows, text):
        return "" if rows else text

    no_notifications = (alerts_data.NO_RECEIVERS_HINT if view.receivers == ()
                        else "No notification sent yet.")
    return (notices, sub, view.firing, view.pending, view.resolved[:RESOLVED_LIMIT], view.silences,
            view.notifications,
            none(view.firing, "No alert is firing."), none(view.pending, "No alert is pending."),
            none(view.resolved, "No resolved alerts in the engine's history."),
            none(view.silences, "No silences."), none(view.notifications, no_notifications))


# registered last so the layout function exists (imported by mount_dashboard, not scanned)
registry.register(__name__, layout)
