"""The French web pages for members and the coordinator: server-rendered Jinja2, forms that
work without JavaScript, sessions in a signed cookie, CSRF-protected forms."""
