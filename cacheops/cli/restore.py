import click

from .. import render
from ..ops.backup import restore
from .app import AppState, confirmed, pass_state


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite entries the app has written again since the eviction.")
@click.option("--dry-run", is_flag=True, help="Only report what would be restored.")
@click.option("--yes", "-y", is_flag=True, help="With --force: do not ask (required when not on a terminal).")
@click.option("--json", "json_flag", is_flag=True, help="JSON output.")
@pass_state
def command(state: AppState, file, force, dry_run, yes, json_flag):
    """Put back the entries an eviction backed up: same bytes, vectors, tags and expiry.

    An entry that exists again with other content (the app cached a fresh answer since) is newer:
    it is kept unless --force. Entries whose expiry has passed since the backup stay gone.
    A `cacheops expire` backup puts the old TTLs back, on every entry whose TTL is still the one
    expire set. Restoring is recorded in the operations log (`cacheops history`).

    \b
    Example:
        cacheops restore ~/.local/state/cacheops/backups/evict-20250101-120000-4242.jsonl
    """
    client = state.client()
    preview = restore(client, file, force=force, dry_run=True)
    if (
        force
        and not dry_run
        and preview.overwritten
        and not confirmed(
            f"Overwrite {render.plural(preview.overwritten, 'entry', 'entries')} the app wrote since the eviction?",
            f"--force would overwrite {preview.overwritten:,} newer entries: re-run with --yes",
            yes,
        )
    ):
        render.note("cancelled: nothing was restored")
        return
    if dry_run:
        result = preview
    else:
        with render.progress(preview.restored + preview.overwritten, "restoring") as advance:
            result = restore(client, file, force=force, on_progress=advance)
    if json_flag:
        render.json_doc(result.to_dict())
        return
    verb = "would restore" if dry_run else "restored"
    render.out(
        f"{verb} {render.plural(result.restored + result.overwritten, 'entry', 'entries')} from {render.escape(file)}"
        + (f" (+{result.companions_restored:,} companion keys)" if result.companions_restored else "")
    )
    if result.identical:
        render.note(f"{result.identical:,} already present with the same bytes")
    if result.kept_newer:
        render.warn(
            f"{result.kept_newer:,} exist again with newer content and were kept (--force overwrites), "
            f"e.g. {', '.join(result.conflicts[:3])}"
        )
    if result.overwritten:
        render.note(f"{result.overwritten:,} newer entries {'would be ' if dry_run else ''}overwritten (--force)")
    if result.expired:
        render.note(f"{result.expired:,} expired since the backup: not restored")
    if result.ttls_restored or result.ttls_kept:
        render.out(f"{verb} the old TTL of {result.ttls_restored:,} entries (a `cacheops expire` backup)")
    if result.ttls_kept:
        render.note(f"{result.ttls_kept:,} TTLs changed since (or the entry is gone): left alone")
