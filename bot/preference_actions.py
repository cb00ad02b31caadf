"""What `follow`, `unfollow` and `filter` do (a person's, or with `channel …` a channel's):
the part of `Actions` about followed authors and filters, kept in its own module.
"""

from __future__ import annotations

from recommender.preferences import Preferences, filter_terms

from .commands import Command
from .reply import Reply

KIND_WORDS = {"exclude": "Never in picks", "include": "Only papers with", "category": "Only categories"}


class PreferenceActions:
    """Mixed into `Actions` (which gives `rec`, `_channel` and `Reply`)."""

    def do_follow(self, command: Command, who):
        return self._follow(who.person, command.text, "You")

    def do_unfollow(self, command: Command, who):
        return self._unfollow(who.person, command.text)

    def do_channel_follow(self, command: Command, who):
        return self._follow(self._channel(who), command.text, "This channel", ephemeral=False)

    def do_channel_unfollow(self, command: Command, who):
        return self._unfollow(self._channel(who), command.text, ephemeral=False)

    def do_filter(self, command: Command, who):
        return self._filter(who.person, command.text, "Your")

    def do_channel_filter(self, command: Command, who):
        return self._filter(self._channel(who), command.text, "This channel's", ephemeral=False)

    def _follow(self, target: str, name: str, subject: str, ephemeral: bool = True):
        name = " ".join(name.split())
        added = self.rec.preferences.follow(target, name)
        verb = "now follow" if subject == "You" else "now follows"
        done = (f"{subject} {verb} {name}: their new papers come first in the picks."
                if added else f"{name} was followed already.")
        return Reply(f"{done} Authors: {self.author_list(target)}", ephemeral=ephemeral)

    def _unfollow(self, target: str, name: str, ephemeral: bool = True):
        written = self.rec.preferences.unfollow(target, name)
        if written is None:
            return Reply(f"“{name}” is not followed. Authors: {self.author_list(target)}")
        return Reply(f"Unfollowed {written}. Authors: {self.author_list(target)}",
                          ephemeral=ephemeral)

    def _filter(self, target: str, text: str, whose: str, ephemeral: bool = True):
        kind, _, value = text.partition(" ")
        store = self.rec.preferences
        if kind == "":
            return Reply(f"{whose} filters: {store.get(target).describe_filters()}. "
                              "They apply to picks and daily posts, not to `search`.")
        if kind == "clear":
            done = "cleared" if store.clear_filters(target) else "were empty already"
            return Reply(f"{whose} filters {done}.", ephemeral=ephemeral)
        added = store.add_filter(target, kind, filter_terms(kind, value))
        now = store.get(target).describe_filters()
        if not added:
            return Reply(f"That filter was set already. {whose} filters: {now}.")
        return Reply(f"{KIND_WORDS[kind]}: {', '.join(added)}. {whose} filters now: {now}.",
                          ephemeral=ephemeral)

    def author_list(self, target: str) -> str:
        names = sorted(self.rec.preferences.get(target).follows.values(), key=str.lower)
        return ", ".join(names) if names else "none"

    def preference_lines(self, target: str, whose: str) -> list[str]:
        """`topics` and `profile`: the authors followed and the filters, when there are any."""
        prefs: Preferences = self.rec.preferences.get(target)
        lines = []
        if prefs.follows:
            lines.append(f"{whose} authors: {self.author_list(target)}")
        if prefs.filters:
            lines.append(f"{whose} filters: {prefs.describe_filters()}")
        return lines
