"""The first run of ``torv``: a few questions, then a real node.

1. The wallet: a new one (its 24 words shown once, then three of them asked back) or one
   restored from its words; a passphrase, typed twice.
2. The chain: Electrum servers or a full node's JSON-RPC, tested before going on.
3. The network: where the node listens, which peers it starts from.
4. The profile: a name and a few words about you.

This app only asks: it returns the answers (``SetupAnswers``) to its caller, which writes the
settings file, creates the wallet and starts the node. What needs the node's code (new words,
checking words, testing a chain backend) the caller passes in, so the terminal UI imports none
of it.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import (
    Button,
    ContentSwitcher,
    Footer,
    Input,
    Label,
    RadioButton,
    RadioSet,
    Select,
    Static,
)

from .safe import plain

Tester = Callable[[str, str, str], Awaitable[str | None]]  # (kind, value, chain) -> problem
STEPS = ("wallet", "words", "confirm", "chain", "network", "profile")
MIN_PASSPHRASE = 8


@dataclass
class SetupAnswers:
    restoring: bool
    words: str
    passphrase: str
    chain: str
    electrum: list[str] = field(default_factory=list)
    chain_rpc: str = ""
    listen: list[str] = field(default_factory=list)
    bootstrap: list[str] = field(default_factory=list)
    name: str = ""
    about: str = ""


def _split(text: str) -> list[str]:
    return [part for part in text.replace(",", " ").split() if part]


class SetupApp(App[SetupAnswers | None]):
    TITLE = "Torv: setting up your node"
    CSS = """
    #setup { padding: 1 2; height: 1fr; }
    .step { height: auto; }
    .step Input, .step Select { width: 1fr; }
    .step Horizontal { height: auto; }
    #words-shown { border: round $warning; padding: 1 2; height: auto; }
    .problem { color: $error; height: auto; }
    .hint { color: $text-muted; }
    #nav { height: auto; padding: 0 2; }
    """
    BINDINGS = [Binding("ctrl+q", "quit_setup", "Quit (nothing is written)", priority=True)]

    def __init__(self, networks: list[str], new_words: Callable[[], str],
                 check_words: Callable[[str], str | None], try_backend: Tester,
                 default_listen: str) -> None:
        super().__init__()
        self.networks = networks
        self.new_words = new_words
        self.check_words = check_words  # None when good, else why not
        self.try_backend = try_backend
        self.default_listen = default_listen
        self.words = ""
        self.asked: list[int] = []  # the positions asked back
        self.step = "wallet"
        self.tested: tuple[str, str, str] | None = None  # the backend that passed its test

    # ------------------------------------------------------------------ the form
    def compose(self) -> ComposeResult:
        with VerticalScroll(id="setup"), ContentSwitcher(initial="wallet", id="steps"):
            with Vertical(id="wallet", classes="step"):
                yield Static("[b]1. Your wallet[/b]\nIt holds your coins and the keys of "
                             "your escrows. Its 24 words restore it, and this node's "
                             "identity, anywhere.")
                with RadioSet(id="wallet-kind"):
                    yield RadioButton("Create a new wallet", value=True, id="create")
                    yield RadioButton("Restore a wallet from its 24 words", id="restore")
                yield Input(placeholder="the 24 words, separated by spaces", id="restore-words",
                            password=True)
                yield Input(placeholder=f"passphrase (at least {MIN_PASSPHRASE} characters)",
                            password=True, id="passphrase")
                yield Input(placeholder="the passphrase again", password=True,
                            id="passphrase-again")
                yield Label("", id="wallet-problem", classes="problem")
            with Vertical(id="words", classes="step"):
                yield Static("[b]Your 24 words[/b]: write them down, on paper, in order. "
                             "They are shown only now; anyone who has them has your coins.")
                yield Static("", id="words-shown")
            with Vertical(id="confirm", classes="step"):
                yield Static("[b]Check[/b]: type the words you wrote down at these positions.")
                for i in range(3):
                    yield Input(id=f"check-{i}")
                yield Label("", id="confirm-problem", classes="problem")
            with Vertical(id="chain", classes="step"):
                yield Static("[b]2. The chain[/b]: how your node sees payments.")
                yield Select([(n, n) for n in self.networks], id="chain-network",
                             value="litecoin" if "litecoin" in self.networks
                             else self.networks[0], allow_blank=False)
                with RadioSet(id="backend"):
                    yield RadioButton("Electrum servers (light: nothing else to run)",
                                      value=True, id="use-electrum")
                    yield RadioButton("My own full node (its JSON-RPC)", id="use-rpc")
                yield Input(placeholder="Electrum servers: ssl://host:50002 (several: "
                            "separated by spaces; tried in turn)", id="electrum")
                yield Input(placeholder="full node: http://user:password@127.0.0.1:9332 or "
                            "the path of its .cookie file", id="chain-rpc")
                with Horizontal():
                    yield Button("Test", id="test")
                    yield Label("", id="test-result", classes="hint")
            with Vertical(id="network", classes="step"):
                yield Static("[b]3. The network[/b]: where your node listens for peers "
                             "(open this port in your router, or leave it: a node behind "
                             "NAT still reaches others), and the peers it starts from.")
                yield Input(value=self.default_listen, id="listen")
                yield Input(placeholder="bootstrap peers: /ip4/…/tcp/…/p2p/12D3KooW… "
                            "(separated by spaces)", id="bootstrap")
                yield Label("", id="network-problem", classes="problem")
            with Vertical(id="profile", classes="step"):
                yield Static("[b]4. You[/b]: what other people see (you can change it later).")
                yield Input(placeholder="your name or your store's", id="name", max_length=64)
                yield Input(placeholder="a few words about you", id="about", max_length=2000)
        with Horizontal(id="nav"):
            yield Button("Back", id="back", disabled=True)
            yield Button("Next", id="next", variant="primary")
            yield Label("", id="nav-hint", classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#restore-words", Input).display = False
        self.query_one("#chain-rpc", Input).display = False
        self.query_one("#passphrase", Input).focus()

    # ------------------------------------------------------------------ moving on
    def show(self, step: str) -> None:
        self.step = step
        self.query_one(ContentSwitcher).current = step
        self.query_one("#back", Button).disabled = step == "wallet"
        self.query_one("#next", Button).label = "Save and start" if step == "profile" \
            else "Next"
        first = {"wallet": "#passphrase", "confirm": "#check-0", "chain": "#electrum",
                 "network": "#listen", "profile": "#name"}.get(step)
        if first is not None:
            self.query_one(first, Input).focus()

    @on(RadioSet.Changed, "#wallet-kind")
    def wallet_kind(self) -> None:
        self.query_one("#restore-words", Input).display = self.restoring

    @on(RadioSet.Changed, "#backend")
    def backend_kind(self) -> None:
        electrum = self.query_one("#use-electrum", RadioButton).value
        self.query_one("#electrum", Input).display = electrum
        self.query_one("#chain-rpc", Input).display = not electrum
        self.tested = None

    @property
    def restoring(self) -> bool:
        return self.query_one("#restore", RadioButton).value

    @on(Button.Pressed, "#back")
    def back(self) -> None:
        order = [s for s in STEPS if not (self.restoring and s in ("words", "confirm"))]
        self.show(order[max(0, order.index(self.step) - 1)])

    @on(Button.Pressed, "#next")
    def next_step(self) -> None:
        if self.step == "wallet" and self.wallet_ok():
            if self.restoring:
                self.show("chain")
            else:
                self.words = self.words or self.new_words()
                numbered = self.words.split()
                self.query_one("#words-shown", Static).update("\n".join(
                    "   ".join(f"{i + 1:>2}. {numbered[i]:<10}" for i in range(row, row + 6))
                    for row in range(0, 24, 6)))
                self.asked = sorted(secrets.SystemRandom().sample(range(24), 3))
                for n, i in enumerate(self.asked):
                    self.query_one(f"#check-{n}", Input).placeholder = f"word {i + 1}"
                self.show("words")
        elif self.step == "words":
            self.show("confirm")
        elif self.step == "confirm" and self.confirm_ok():
            self.show("chain")
        elif self.step == "chain":
            self.go_past_chain()
        elif self.step == "network" and self.network_ok():
            self.show("profile")
        elif self.step == "profile":
            self.exit(self.answers())

    def wallet_ok(self) -> bool:
        problem = self.query_one("#wallet-problem", Label)
        passphrase = self.query_one("#passphrase", Input).value
        if self.restoring:
            why = self.check_words(self.query_one("#restore-words", Input).value)
            if why is not None:
                problem.update(f"the words: {why}")
                return False
        if len(passphrase) < MIN_PASSPHRASE:
            problem.update(f"the passphrase: at least {MIN_PASSPHRASE} characters")
            return False
        if passphrase != self.query_one("#passphrase-again", Input).value:
            problem.update("the two passphrases differ")
            return False
        problem.update("")
        return True

    def confirm_ok(self) -> bool:
        words = self.words.split()
        wrong = [i + 1 for n, i in enumerate(self.asked)
                 if self.query_one(f"#check-{n}", Input).value.strip().lower() != words[i]]
        self.query_one("#confirm-problem", Label).update(
            f"word {', '.join(map(str, wrong))} does not match what was shown: look again "
            "(Back shows them)" if wrong else "")
        return not wrong

    def backend(self) -> tuple[str, str, str]:
        chain = str(self.query_one("#chain-network", Select).value)
        if self.query_one("#use-electrum", RadioButton).value:
            return "electrum", self.query_one("#electrum", Input).value.strip(), chain
        return "rpc", self.query_one("#chain-rpc", Input).value.strip(), chain

    @on(Button.Pressed, "#test")
    def test_pressed(self) -> None:
        self.run_test_backend(go_on=False)

    def go_past_chain(self) -> None:
        if self.tested == self.backend():
            self.show("network")
        else:
            self.run_test_backend(go_on=True)

    @work(exclusive=True, group="test")
    async def run_test_backend(self, go_on: bool) -> None:
        kind, value, chain = self.backend()
        result = self.query_one("#test-result", Label)
        if not value:
            result.update("give a server (or the full node's address) first")
            return
        result.update(f"testing {plain(value)}…")
        problem = await self.try_backend(kind, value, chain)
        if problem is not None:
            self.tested = None
            result.update(f"[red]does not work: {plain(problem)}[/red]")
            return
        self.tested = (kind, value, chain)
        result.update(f"[green]works[/green]: {plain(value)} serves {chain}")
        if go_on:
            self.show("network")

    def network_ok(self) -> bool:
        problem = self.query_one("#network-problem", Label)
        listen = _split(self.query_one("#listen", Input).value)
        bootstrap = _split(self.query_one("#bootstrap", Input).value)
        bad = [a for a in listen + bootstrap if not a.startswith("/")]
        if not listen:
            problem.update("listen: at least one address, e.g. " + self.default_listen)
        elif bad:
            problem.update(f"{bad[0]!r} is not a multiaddr (they start with /)")
        elif any("/p2p/" not in a for a in bootstrap):
            problem.update("a bootstrap peer ends in /p2p/<its peer id>")
        else:
            problem.update("")
            return True
        return False

    def answers(self) -> SetupAnswers:
        kind, value, chain = self.tested or self.backend()
        words = self.query_one("#restore-words", Input).value if self.restoring else self.words
        return SetupAnswers(
            restoring=self.restoring, words=" ".join(words.lower().split()),
            passphrase=self.query_one("#passphrase", Input).value, chain=chain,
            electrum=_split(value) if kind == "electrum" else [],
            chain_rpc=value if kind == "rpc" else "",
            listen=_split(self.query_one("#listen", Input).value),
            bootstrap=_split(self.query_one("#bootstrap", Input).value),
            name=self.query_one("#name", Input).value.strip(),
            about=self.query_one("#about", Input).value.strip())

    def action_quit_setup(self) -> None:
        self.exit(None)
