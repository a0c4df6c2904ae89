"""Modal: the user's text (and optional system message) to find every cached copy of."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class FindPromptScreen(ModalScreen[tuple[str, str | None] | None]):
    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Find by prompt: the user's exact text, in every cache, for every model", classes="title")
            yield Input(placeholder="What is the capital of France?", id="prompt")
            yield Input(placeholder="system message the app sends first (optional)", id="system")
            yield Label("enter: find   escape: cancel", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = self.query_one("#prompt", Input).value
        if not text.strip():
            self.query_one("#prompt", Input).focus()
            return
        system = self.query_one("#system", Input).value
        self.dismiss((text, system or None))

    def action_cancel(self) -> None:
        self.dismiss(None)
