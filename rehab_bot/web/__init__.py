"""The clinic's web app: the caseload dashboard in a browser and as a Telegram Mini App.

A thin front end like rehab_bot/bot/: handlers parse (WTForms), call the domain
core and render (Jinja2, autoescaped; htmx for partial updates). It runs in the
bot's event loop on its own port ([web] listen), started by rehab_bot/bot/app.py.
No telegram import here: the Telegram side (/dashboard, the Mini App buttons) is
rehab_bot/bot/web.py.

- app.py: the application factory (build_app) and WebServer (start/stop);
- auth.py: sessions, sign-in (one-time link, Mini App initData), who may open what;
- forms.py: WTForms with session-bound CSRF; every POST is checked;
- initdata.py: Telegram's initData signature check;
- caseload.py: the caseload page.
"""
