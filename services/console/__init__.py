"""The CSM console: server-rendered pages over the scorer's and alerter's read APIs, with sign-in."""
