"""Journeys in a real browser (Chromium, headless). A member: sign in by the e-mailed link,
edit a need, see the suggestion it brings with its reason, search, mark interest in a call,
digest settings, sign out. The coordinator: the guided form of a new organisation, a call's
ranking, consortia proposed, reviewed and approved, the impact page counting it. Each main
page is screenshotted and checked with axe-core (no serious or critical violation)."""

from __future__ import annotations

import email
import email.policy
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import Artifacts, DemoSite

pytestmark = pytest.mark.slow

DEMO_MEMBER = "equipe.demo@maillage.invalid"
DEMO_COORDINATOR = "coordination.demo@maillage.invalid"
NEW_NEED = (
    "Accompagner nos locataires âgés dans leurs démarches en ligne : ateliers numériques "
    "et permanence numérique au pied des immeubles."
)


@pytest.fixture
def page(browser: Any, demo_site: DemoSite) -> Iterator[Any]:
    # axe-core is injected as a script: the pages' CSP would refuse it.
    context = browser.new_context(
        base_url=demo_site.url,
        locale="fr-FR",
        bypass_csp=True,
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def latest_link(outbox: Path, address: str, after: float) -> str:
    """The sign-in link of the newest message to `address` written after `after`."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for path in sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True):
            if path.stat().st_mtime < after:
                continue
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if message["To"] != address:
                continue
            body = message.get_body(preferencelist=("plain",))
            found = re.search(r"http\S+/connexion/lien\?jeton=\S+", body.get_content())
            if found:
                return found.group(0)
        time.sleep(0.2)
    raise AssertionError(f"no sign-in link for {address} in {outbox}")


class TestMemberJourney:
    def test_sign_in_edit_a_need_see_its_partner_search_and_sign_out(
        self, page: Any, demo_site: DemoSite, artifacts: Artifacts, accessible: Any
    ) -> None:
        # Not signed in: the sign-in page.
        page.goto("/espace")
        assert page.url.startswith(f"{demo_site.url}/connexion")
        accessible(page, "connexion")
        artifacts.shot(page, "connexion")

        # A wrong address is said next to the field, in French.
        page.get_by_label("Adresse électronique de votre compte").fill("pas-une-adresse")
        page.get_by_role("button", name="Recevoir un lien de connexion").click()
        assert "n'est pas valide" in page.locator("#email-erreur").inner_text()
        accessible(page, "connexion-erreur")

        # The link arrives in the outbox (no SMTP server) and signs in.
        asked = time.time() - 1
        page.get_by_label("Adresse électronique de votre compte").fill(DEMO_MEMBER)
        page.get_by_role("button", name="Recevoir un lien de connexion").click()
        page.get_by_role("heading", name="Consultez votre messagerie").wait_for()
        link = latest_link(demo_site.outbox, DEMO_MEMBER, asked)
        page.goto(link)
        page.get_by_role("button", name="Me connecter").click()
        page.get_by_role("heading", level=1, name="Arc-Touloubre Habitat").wait_for()
        accessible(page, "organisation")
        artifacts.shot(page, "organisation")

        # Edit a need.
        need = page.locator("li.besoin", has_text="mesurer l'impact social")
        need.get_by_role("link", name=re.compile("^Modifier")).click()
        page.get_by_role("heading", name="Modifier le besoin").wait_for()
        accessible(page, "enonce")
        artifacts.shot(page, "enonce")
        page.get_by_label("Énoncé").fill(NEW_NEED)
        page.get_by_role("button", name="Enregistrer").click()
        page.get_by_role("status").filter(has_text="l'énoncé a été modifié").wait_for()
        assert page.locator("li.besoin", has_text="démarches en ligne").count() == 1

        # The partners it brings, with the need as the reason.
        page.get_by_role("link", name="Voir les partenaires suggérés").click()
        page.get_by_role("heading", level=1, name="Partenaires suggérés").wait_for()
        reason = page.locator("article.carte", has_text="démarches en ligne").first
        assert reason.count() == 1, "the edited need is no suggestion's reason"
        assert "Votre besoin" in reason.inner_text()
        assert "Leur compétence" in reason.inner_text()
        assert "numérique" in reason.inner_text().lower()
        accessible(page, "partenaires")
        artifacts.shot(page, "partenaires")
        page.get_by_role("link", name="Ils ont les mêmes besoins ou compétences").click()
        page.get_by_role(
            "heading", level=2, name="Ils ont les mêmes besoins ou compétences"
        ).wait_for()
        accessible(page, "partenaires-pairs")

        # Search, around a territory typed by name; then a territory nobody bears.
        page.get_by_role("link", name="Rechercher", exact=True).click()
        accessible(page, "recherche-vide")
        page.get_by_label("Qui sait faire…").fill("jardins partagés")
        page.get_by_label("…autour de (facultatif)").fill("Bouches-du-Rhône")
        page.get_by_role("button", name="Rechercher").click()
        results = page.locator("article.carte")
        results.first.wait_for()
        assert "Terres Partagées" in page.locator("main").inner_text()
        accessible(page, "recherche")
        artifacts.shot(page, "recherche")
        page.get_by_label("…autour de (facultatif)").fill("Nullepart-sur-Mer")
        page.get_by_role("button", name="Rechercher").click()
        assert "Nullepart-sur-Mer" in page.locator("#territoire-erreur").inner_text()
        accessible(page, "recherche-erreur")

        # The open calls that fit the organisation: countdown, reasons, « intéressé ».
        page.get_by_role("link", name="Appels à projets", exact=True).click()
        page.get_by_role("heading", level=1, name="Appels à projets ouverts").wait_for()
        accessible(page, "appels")
        page.get_by_role("link", name="mes appels").click()
        page.get_by_role("heading", level=1, name="Appels à projets pour vous").wait_for()
        first = page.locator("article.carte").first
        assert re.search(r"J-\d+|Permanent|Dernier jour", first.inner_text())
        accessible(page, "appels-pour-vous")
        artifacts.shot(page, "appels-pour-vous")
        title = first.locator("h2").inner_text()
        first.get_by_role("button", name=re.compile("^Intéressé")).click()
        page.get_by_role("status").filter(has_text="intéressée par cet appel").wait_for()
        marked = page.locator("article.carte", has_text=title).first
        assert "Retirer mon intérêt" in marked.inner_text()
        marked.get_by_role("link", name=title).click()
        page.get_by_role("heading", level=2, name="Exigences de l'appel").wait_for()
        assert "Intéressé" in page.locator("main").inner_text()
        accessible(page, "appel")
        artifacts.shot(page, "appel")

        # The digest settings.
        page.goto("/espace")
        page.get_by_role("link", name="Digest hebdomadaire").click()
        page.get_by_role("heading", level=1, name="Digest hebdomadaire").wait_for()
        page.get_by_label("Adresse électronique").fill("pas-une-adresse")
        page.get_by_role("button", name="Abonner cette adresse").click()
        assert "n'est pas une adresse" in page.locator("#email-erreur").inner_text()
        accessible(page, "digest")
        artifacts.shot(page, "digest")

        # On a phone.
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto("/espace")
        artifacts.shot(page, "organisation-mobile")
        page.set_viewport_size({"width": 1280, "height": 900})

        # Sign out.
        page.get_by_role("button", name="Se déconnecter").click()
        page.get_by_role("status").filter(has_text="déconnecté").wait_for()
        page.goto("/espace")
        assert page.url.startswith(f"{demo_site.url}/connexion")


def sign_in_by_mail(page: Any, demo_site: DemoSite, address: str) -> None:
    page.goto("/connexion")
    asked = time.time() - 1
    page.get_by_label("Adresse électronique de votre compte").fill(address)
    page.get_by_role("button", name="Recevoir un lien de connexion").click()
    page.get_by_role("heading", name="Consultez votre messagerie").wait_for()
    page.goto(latest_link(demo_site.outbox, address, asked))
    page.get_by_role("button", name="Me connecter").click()


def formed(page: Any) -> int:
    figure = page.locator(".chiffres li", has_text="consortiums formés").locator("strong")
    return int(figure.inner_text())


class TestCoordinatorJourney:
    def test_propose_consortia_for_a_call_approve_one_and_see_the_impact_change(
        self, page: Any, demo_site: DemoSite, artifacts: Artifacts, accessible: Any
    ) -> None:
        sign_in_by_mail(page, demo_site, DEMO_COORDINATOR)
        page.get_by_role("heading", level=1, name="Organisations du réseau").wait_for()
        accessible(page, "organisations")

        # The guided form of a new organisation; names of territories suggested as typed.
        page.get_by_role("link", name="Inscrire une nouvelle organisation").click()
        page.get_by_role("heading", level=1, name="Inscrire une nouvelle organisation").wait_for()
        page.get_by_label("Territoire 1").press_sequentially("Marseil", delay=30)
        page.locator("#suggestions-territoire-0 option").first.wait_for(state="attached")
        assert "Marseille" in page.locator("#suggestions-territoire-0").inner_html()
        accessible(page, "nouvelle-organisation")
        artifacts.shot(page, "nouvelle-organisation")

        # The impact before.
        page.get_by_role("link", name="Impact", exact=True).click()
        page.get_by_role("heading", level=1, name="Mesure de l'impact").wait_for()
        before = formed(page)

        # A call, the organisations that fit it, and consortia proposed for it.
        page.get_by_role("link", name="Appels à projets", exact=True).click()
        page.get_by_role("link", name=re.compile("Nature en pied d'immeuble")).click()
        page.get_by_role(
            "heading", level=2, name="Organisations qui répondent à l'appel"
        ).wait_for()
        accessible(page, "appel-coordination")
        artifacts.shot(page, "appel-coordination")
        page.get_by_role("button", name="Proposer des consortiums").click()
        page.get_by_role("heading", level=1, name="Revue des consortiums").wait_for()
        page.get_by_role("status").filter(has_text="attendent votre revue").wait_for()
        cards = page.locator("article.carte")
        assert cards.count() >= 1
        assert "Couverture des exigences par les membres" in cards.first.inner_text()
        accessible(page, "revue")
        artifacts.shot(page, "revue")

        # One consortium's page: its coverage table and the review's forms.
        cards.last.get_by_role("link", name=re.compile("^Rejeter, demander")).click()
        page.get_by_role("heading", level=2, name="Décision").wait_for()
        page.get_by_label("Rejeter").check()
        page.get_by_role("button", name=re.compile("^Enregistrer la décision")).click()
        assert "Choisissez un motif" in page.locator("#reason_code-erreur").inner_text()
        accessible(page, "consortium")
        artifacts.shot(page, "consortium")

        # Approve the first one from the queue.
        page.get_by_role("link", name="Consortiums", exact=True).click()
        page.locator("article.carte").first.get_by_role(
            "button", name=re.compile("^Approuver")
        ).click()
        page.get_by_role("status").filter(has_text="la décision a été prise en compte").wait_for()

        # The impact page counts it.
        page.get_by_role("link", name="Impact", exact=True).click()
        page.get_by_role("heading", level=1, name="Mesure de l'impact").wait_for()
        assert formed(page) == before + 1
        assert page.locator("svg.graphique title").first.text_content() == (
            "Consortiums par département"
        )
        accessible(page, "impact")
        artifacts.shot(page, "impact")
