"""The one list of dashboard pages: the nav, the URL state, the page modules and Dash's page
registration all read it. A new page is one `Page` here and one module in `pages/`."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    path: str  # URL path, and the key of the page everywhere
    module: str  # `pages.<module>`: layout and callbacks
    name: str  # nav label and page title

    @property
    def nav_id(self) -> str:
        return f"nav-{self.module}"


PAGES: tuple[Page, ...] = (
    Page("/", "overview", "Overview"),
    Page("/topics", "topics", "Topics"),
    Page("/groups", "groups", "Consumer groups"),
    Page("/spark", "spark", "Spark"),
    Page("/alerts", "alerts", "Alerts"),
)
PATHS: tuple[str, ...] = tuple(p.path for p in PAGES)


def register(module_name: str, layout: Callable) -> None:
    """`dash.register_page` for the page module `module_name` (its `__name__`)."""
    import dash

    order, page = next((i, p) for i, p in enumerate(PAGES) if module_name.endswith(f".pages.{p.module}"))
    dash.register_page(module_name, path=page.path, name=page.name, title=f"{page.name} · streamscope",
                       order=order, layout=layout)
