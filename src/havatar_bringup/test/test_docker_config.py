"""The server stack's files are consistent (there is no Docker engine here to run them)."""
from __future__ import annotations

import re

import yaml

from havatar_bringup.demo import Demo
from havatar_bringup.mediamtx import (ADDRESS_KEYS, AUTH_KEYS, CLEAR_RTSP, SETTINGS, SHIPPED_CERT, SHIPPED_KEY,
                                     TLS_KEYS, MediaMtxPorts, as_shipped, relay_auth, rtsps_only)
from havatar_testing import WORKSPACE
from havatar_testing.mediamtx import MediaMtxUser, mediamtx_config

DOCKER = WORKSPACE / 'docker'


def compose() -> dict:
    return yaml.safe_load((DOCKER / 'compose.yaml').read_text())


def test_compose_parses_and_references_existing_files():
    services = compose()['services']
    assert set(services) == {'caddy', 'relay', 'redis', 'mediamtx', 'prometheus'}
    for name, service in services.items():
        for volume in service.get('volumes', []):
            source = volume.split(':')[0]
            if source.startswith('./'):
                assert (DOCKER / source).exists() or (DOCKER / (source + '.example')).exists(), (name, source)
        if 'build' in service:
            assert (DOCKER / service['build']['context'] / service['build']['dockerfile']).is_file()
    assert services['mediamtx']['image'].endswith(':1.14.0'), 'the MediaMTX release the tests use'
    assert 'healthcheck' in services['relay'] and 'healthcheck' in services['redis']
    assert '--appendonly' in services['redis']['command']


def test_every_variable_has_an_example():
    used = set(re.findall(r'\$\{(\w+)\}', (DOCKER / 'compose.yaml').read_text()))
    used |= set(re.findall(r'\{\$(\w+)\}', (DOCKER / 'Caddyfile').read_text()))
    example = {line.split('=')[0] for line in (DOCKER / '.env.example').read_text().splitlines()
               if line and not line.startswith('#')}
    assert used <= example, used - example


def test_proxy_and_monitoring_point_at_the_services():
    services = compose()['services']
    caddy = (DOCKER / 'Caddyfile').read_text()
    for target in re.findall(r'reverse_proxy (\S+)', caddy):
        host, port = target.split(':')
        assert host in services and port in ' '.join(services[host].get('expose', [])), target
    prometheus = yaml.safe_load((DOCKER / 'prometheus.yml').read_text())
    for job in prometheus['scrape_configs']:
        for target in job['static_configs'][0]['targets']:
            host, port = target.split(':')
            assert host in services and port in ' '.join(services[host].get('expose', [])), target
    mediamtx = yaml.safe_load((DOCKER / 'mediamtx.yml').read_text())
    assert mediamtx['authHTTPAddress'] == 'http://relay:8090/mediamtx/auth'
    assert mediamtx['metricsAddress'] == ':9998' and mediamtx['apiAddress'] == ':9997'


def test_relay_image_installs_what_the_relay_imports():
    requirements = (WORKSPACE / 'scripts' / 'requirements-relay.txt').read_text().lower()
    for module in ('aiohttp', 'pydantic', 'pydantic-settings', 'redis', 'prometheus-client', 'pyyaml'):
        assert module in requirements
    pinned = dict(line.split('==') for line in
                  (WORKSPACE / 'scripts' / 'requirements.txt').read_text().lower().splitlines()
                  if '==' in line)
    for line in requirements.splitlines():
        if '==' in line:
            name, version = line.split('==')
            assert pinned.get(name) == version, f'{name} differs from requirements.txt'
    accounts = yaml.safe_load((DOCKER / 'relay.yaml.example').read_text())
    assert set(accounts) == {'robots', 'users'}


def test_demo_and_test_mediamtx_agree_with_the_shipped_config(tmp_path):
    """One set of MediaMTX settings: docker/mediamtx.yml, the demo's and the tests' configs
    differ only in addresses and authentication.
    """
    shipped = yaml.safe_load((DOCKER / 'mediamtx.yml').read_text())
    demo = Demo(tmp_path, domain_id=0).mediamtx_config()
    tests = mediamtx_config(MediaMtxPorts(), [MediaMtxUser('viewer', 'secret')])
    deployment = set(ADDRESS_KEYS) | set(AUTH_KEYS) | set(TLS_KEYS)
    for config in (shipped, demo, tests):
        assert {k: v for k, v in as_shipped(config).items() if k not in deployment} == SETTINGS
        assert set(ADDRESS_KEYS) <= set(config)
    for config in (demo, tests):
        listeners = [v for k, v in config.items() if k in ADDRESS_KEYS and k.endswith('Address') and v]
        assert listeners and all(v.startswith('127.0.0.1:') for v in listeners), listeners
    assert {k: shipped[k] for k in AUTH_KEYS if k in shipped} == relay_auth(shipped['authHTTPAddress'])
    assert {k: demo[k] for k in AUTH_KEYS if k in demo} == relay_auth(demo['authHTTPAddress'])
    assert tests['authMethod'] == 'internal'
    # robots elsewhere publish encrypted: the shipped server speaks RTSPS only; the demo
    # and the tests, on loopback, clear RTSP
    assert {k: shipped[k] for k in TLS_KEYS} == rtsps_only()
    assert {k: demo[k] for k in TLS_KEYS if k in demo} == CLEAR_RTSP


def test_compose_publishes_rtsps_with_the_mounted_certificate():
    mediamtx = compose()['services']['mediamtx']
    shipped = yaml.safe_load((DOCKER / 'mediamtx.yml').read_text())
    published = [port.split(':')[-1] for port in mediamtx['ports']]
    assert shipped['rtspsAddress'] == ':8322' and '8322' in published
    assert '8554' not in published, 'no clear RTSP from outside'
    mounts = dict(volume.split(':')[:2] for volume in mediamtx['volumes'])
    assert mounts['./certs'] == '/certs' and (DOCKER / 'certs').is_dir()
    assert SHIPPED_CERT.startswith('/certs/') and SHIPPED_KEY.startswith('/certs/')
    ignored = (DOCKER / 'certs' / '.gitignore').read_text().splitlines()
    assert '*' in ignored, 'a key in docker/certs is never committed'
