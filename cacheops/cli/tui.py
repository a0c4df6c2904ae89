"""`cacheops tui`: connect (failures are one line and an exit code, before any screen), then run the app."""

from __future__ import annotations

import click

from .app import AppState, pass_state, suggested


@click.command("tui")
@pass_state
def command(state: AppState):
    """Browse caches and entries interactively; find by prompt, show neighbours, evict with a preview.

    Keys: arrows to move, enter to open, / to filter (text, model:NAME), f find by prompt,
    n neighbours of a semantic entry, d evict the selected entry (preview, confirm, backup, log),
    r refresh, ctrl+p command palette, q quit. Reading never touches the cache (CLIENT NO-TOUCH).

    \b
    Example:
        cacheops --url redis://localhost:6379 tui
    """
    from ..tui import CacheopsApp
    from ..tui.session import Session

    client = state.client()
    client.ping()  # a connection failure is the CLI's one-line error, before the screen takes over
    app = CacheopsApp(Session(client, state.spec.display, command=suggested(state)))
    app.run()
    if app.return_code:
        raise click.exceptions.Exit(app.return_code)
