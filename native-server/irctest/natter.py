"""An irctest controller for natter-server's IRC listener.

irctest (https://github.com/progval/irctest) is the IRC servers' conformance suite. To run it
against natter: put this file in irctest's `irctest/controllers/`, build natter-server, and run

    NATTER_SERVER_BIN=/path/to/natter-server \
        pytest --controller irctest.controllers.natter \
        -m 'not Ergo and not Sable and not deprecated' irctest/server_tests/

Each test gets a fresh server with a store in its own directory and flood control off; its
accounts are made with `natter-server account add` (natter's passwords need 8 characters; most
of irctest's are shorter, so the SASL and account cases need a build with
`limits::PASSWORD_MIN_CHARS` lowered). README.md ("IRC") says what fails, and why.
"""
import os
import signal
import subprocess
import time
from typing import Optional, Set, Type

from irctest.basecontrollers import BaseServerController, DirectoryBasedController
from irctest.runner import NotImplementedByController

NATTER_BIN = os.environ.get("NATTER_SERVER_BIN", "natter-server")

CONFIG = """
[irc]
# irctest expects this name in PONG, 004, 312 and 391.
server_name = "My.Little.Server"
[limits]
flood_refill_ms = 0
[accounts]
admins = ["operuser"]
"""


class NatterController(BaseServerController, DirectoryBasedController):
    software_name = "natter"
    supported_sasl_mechanisms: Set[str] = {"PLAIN"}
    supports_sts = False
    extban_mute_char = None

    def run(
        self,
        hostname: str,
        port: int,
        *,
        password: Optional[str],
        ssl: bool,
        run_services: bool,
        faketime: Optional[str],
        websocket_hostname: Optional[str],
        websocket_port: Optional[int],
    ) -> None:
        if websocket_hostname is not None or websocket_port is not None:
            raise NotImplementedByController("Websocket")
        if password is not None:
            raise NotImplementedByController("PASS command")
        if ssl:
            raise NotImplementedByController("TLS")
        assert self.proc is None
        self.port = port
        self.hostname = hostname
        self.create_config()
        (h2, p2) = self.get_hostname_and_port()
        with self.open_file("server.toml") as fd:
            fd.write(CONFIG)
        self.data = self.directory / "data"
        # irctest's operator: `OPER operuser operpassword` takes the admin account's powers.
        self.add_account("operuser", "operpassword")
        self.proc = self.execute(
            [
                NATTER_BIN,
                "--listen", f"{h2}:{p2}",
                "--irc-listen", f"{hostname}:{port}",
                "--data-dir", str(self.data),
                "--config", str(self.directory / "server.toml"),
            ],
        )

    def wait_for_services(self) -> None:
        self.wait_for_port()

    def add_account(self, username: str, password: str) -> None:
        pw = self.directory / "pw"
        pw.write_text(password)
        subprocess.run(
            [NATTER_BIN, "account", "--data-dir", str(self.data), "--config",
             str(self.directory / "server.toml"), "add", username, "--password-file", str(pw)],
            check=True, stdout=subprocess.DEVNULL,
        )

    def registerUser(self, case, username: str, password: Optional[str] = None) -> None:
        assert password
        self.wait_for_port()
        self.add_account(username, password)
        # A running server reads the accounts again on SIGHUP.
        self.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)


def get_irctest_controller_class() -> Type[NatterController]:
    return NatterController
