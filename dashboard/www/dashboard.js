/*
 * dashboard/www/dashboard.js: the script of sales_kafka_dashboard's page.
 *
 * Every refresh period it reads /api/dashboard (all KPI views in one
 * snapshot, made by PostgreSQL) and puts the figures into the page; a
 * refresh that fails leaves the figures as they were and shows the stale
 * banner until one succeeds.  Query string of the page:
 *   refresh=SECONDS  period (default 5, 1 to 3600)
 *   grain=minute|hour|day   the time series shown first (default minute)
 *   currency=ISO 4217 code  how money is written (default USD)
 * Figures are written with textContent only.  The body's data-refreshes
 * (successful refreshes), data-fetched-at (the snapshot's time) and
 * data-state (live or stale) say where the page is, for tests.
 */
(function () {
	'use strict';

	var params = new URLSearchParams(window.location.search);
	var period = parseInt(params.get('refresh') || '5', 10);
	if (!(period >= 1 && period <= 3600))
		period = 5;
	var grain = params.get('grain');
	if (['minute', 'hour', 'day'].indexOf(grain) < 0)
		grain = 'minute';
	var currency = (params.get('currency') || 'USD').toUpperCase();
	if (!/^[A-Z]{3}$/.test(currency))
		currency = 'USD';

	var money;
	try {
		money = new Intl.NumberFormat('en-US', {style: 'currency', currency: currency,
			minimumFractionDigits: 2, maximumFractionDigits: 2});
	} catch (e) {
		money = new Intl.NumberFormat('en-US', {style: 'currency', currency: 'USD',
			minimumFractionDigits: 2, maximumFractionDigits: 2});
	}
	var moneyShort = new Intl.NumberFormat('en-US', {style: 'currency',
		currency: money.resolvedOptions().currency, notation: 'compact', maximumFractionDigits: 1});
	var integer = new Intl.NumberFormat('en-US', {maximumFractionDigits: 0});
	var decimal = new Intl.NumberFormat('en-US', {maximumFractionDigits: 1});
	var palette = ['#2f5bea', '#0f9d76', '#f39c12', '#8e44ad', '#e74c3c', '#16a085',
		'#d35400', '#2c3e50', '#7f8c8d', '#c0392b'];

	var refreshes = 0;
	var lastOk = null;			/* Date of the last successful refresh */
	var data = null;			/* the last snapshot */
	var timeZone = undefined;	/* the model's, from kpi_as_of */
	var charts = {};

	function $(id) { return document.getElementById(id); }
	function setText(id, text) { var e = $(id); if (e) e.textContent = text; }
	function num(v) { return v === null || v === undefined ? null : Number(v); }
	function fmtMoney(v) { return v === null || v === undefined ? '–' : money.format(Number(v)); }
	function fmtInt(v) { return v === null || v === undefined ? '–' : integer.format(Number(v)); }
	function fmtTime(iso, opts) {
		if (!iso)
			return '–';
		var o = Object.assign({timeZone: timeZone}, opts);
		try {
			return new Intl.DateTimeFormat('en-US', o).format(new Date(iso));
		} catch (e) {
			delete o.timeZone;
			return new Intl.DateTimeFormat('en-US', o).format(new Date(iso));
		}
	}
	function ago(iso) {
		if (!iso)
			return '';
		var s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
		if (s < 60) return s + ' s ago';
		if (s < 3600) return Math.round(s / 60) + ' min ago';
		if (s < 86400) return Math.round(s / 3600) + ' h ago';
		return Math.round(s / 86400) + ' days ago';
	}

	/* ------------------------------------------------------------ charts */

	function makeChart(id, type, options) {
		var canvas = $(id);
		if (!canvas || typeof Chart === 'undefined')
			return null;
		return new Chart(canvas, {
			type: type,
			data: {labels: [], datasets: []},
			options: Object.assign({
				responsive: true, maintainAspectRatio: false, animation: false,
				plugins: {legend: {display: false}}
			}, options || {})
		});
	}

	function setChart(chart, labels, datasets) {
		if (!chart)
			return;
		chart.data.labels = labels;
		chart.data.datasets = datasets;
		chart.update('none');
	}

	function moneyAxis() {
		return {beginAtZero: true, ticks: {callback: function (v) { return moneyShort.format(v); }}};
	}

	function initCharts() {
		if (typeof Chart === 'undefined')
			return;
		Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
		Chart.defaults.color = '#6b7385';
		charts.revenue = makeChart('chart-revenue', 'line', {
			scales: {y: moneyAxis(), x: {ticks: {maxTicksLimit: 12}}},
			plugins: {legend: {display: false},
				tooltip: {callbacks: {label: function (c) { return money.format(c.parsed.y); }}}}
		});
		charts.quantity = makeChart('chart-quantity', 'bar', {
			scales: {y: {beginAtZero: true}, x: {ticks: {maxTicksLimit: 8}}}
		});
		charts.topProducts = makeChart('chart-top-products', 'bar', {
			indexAxis: 'y',
			scales: {x: moneyAxis()},
			plugins: {legend: {display: false},
				tooltip: {callbacks: {label: function (c) { return money.format(c.parsed.x); }}}}
		});
		charts.price = makeChart('chart-price', 'bar', {
			scales: {y: {beginAtZero: true, title: {display: true, text: 'order lines'}}}
		});
		['category', 'region', 'segment', 'today-category'].forEach(function (k) {
			charts[k] = makeChart('chart-' + k, 'doughnut', {cutout: '62%'});
		});
	}

	/* ------------------------------------------------------------ rendering */

	function renderCards(v) {
		var t = (v.kpi_totals || [])[0] || {};
		var d = (v.kpi_today || [])[0] || {};
		var a = (v.kpi_as_of || [])[0] || {};
		setText('kpi-revenue', fmtMoney(t.revenue));
		setText('kpi-orders', fmtInt(t.order_count));
		setText('kpi-lines', fmtInt(t.sales_count));
		setText('kpi-aov', fmtMoney(t.average_order_value));
		setText('kpi-today-revenue', fmtMoney(d.revenue));
		setText('kpi-today-orders', fmtInt(d.order_count));
		setText('kpi-today-aov', fmtMoney(d.average_order_value));
		setText('kpi-today-day', d.day ? fmtTime(d.day + 'T12:00:00Z',
			{timeZone: 'UTC', weekday: 'long', month: 'short', day: 'numeric'}) : 'today');
		setText('kpi-updated', a.rolled_up_at
			? fmtTime(a.rolled_up_at, {hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false})
			: 'not yet');
		setText('kpi-updated-ago', a.rolled_up_at ? ago(a.rolled_up_at) + ' (' + (timeZone || 'UTC') + ')' : 'rollups pending');
		var offs = Array.isArray(a.covered_offsets) ? a.covered_offsets : [];
		if (offs.length === 0)
			setText('kpi-offsets', 'none yet');
		else {
			var total = 0;
			offs.forEach(function (o) { total += Number(o.offset) || 0; });
			setText('kpi-offsets', fmtInt(total) + ' messages, ' + offs.length + ' partitions');
		}
		$('kpi-offsets').title = offs.map(function (o) {
			return o.pipeline + ' ' + o.topic + '[' + o.partition + '] < ' + o.offset;
		}).join('\n');
	}

	function periodLabel(iso) {
		if (grain === 'minute')
			return fmtTime(iso, {hour: '2-digit', minute: '2-digit', hour12: false});
		if (grain === 'hour')
			return fmtTime(iso, {month: 'short', day: 'numeric', hour: '2-digit', hour12: false}) + 'h';
		return fmtTime(iso, {month: 'short', day: 'numeric'});
	}

	/*
	 * Periods without sales have no row: put them in as zeros, from the first
	 * row to the current period, so that the time axis is even and ends now.
	 * Minutes and hours only (a day is not always 24 hours long).
	 */
	function fillGaps(rows) {
		var step = {minute: 60000, hour: 3600000}[grain];
		if (!step || rows.length === 0)
			return rows;
		var byTime = {};
		rows.forEach(function (r) { byTime[new Date(r.period_start).getTime()] = r; });
		var t = new Date(rows[0].period_start).getTime();
		var end = Math.max(new Date(rows[rows.length - 1].period_start).getTime(),
			Math.floor(Date.now() / step) * step);
		var out = [];
		for (; t <= end && out.length < 5000; t += step)
			out.push(byTime[t] || {period_start: new Date(t).toISOString(), revenue: 0, quantity: 0});
		return out;
	}

	function renderSeries() {
		if (!data)
			return;
		var rows = fillGaps(data.views['kpi_sales_per_' + grain] || []);
		var labels = rows.map(function (r) { return periodLabel(r.period_start); });
		setChart(charts.revenue, labels, [{
			label: 'revenue', data: rows.map(function (r) { return num(r.revenue); }),
			borderColor: '#2f5bea', backgroundColor: 'rgba(47, 91, 234, .12)',
			fill: true, tension: .25, pointRadius: rows.length > 60 ? 0 : 2
		}]);
		setChart(charts.quantity, labels, [{
			label: 'quantity', data: rows.map(function (r) { return num(r.quantity); }),
			backgroundColor: '#0f9d76'
		}]);
		setText('grain-hint', {minute: 'per minute, last 2 hours', hour: 'per hour, last 48 hours',
			day: 'per day, last 90 days'}[grain]);
		document.querySelectorAll('.switch button').forEach(function (b) {
			b.classList.toggle('on', b.dataset.grain === grain);
		});
	}

	function cell(tr, text, cls) {
		var td = document.createElement('td');
		td.textContent = text;
		if (cls)
			td.className = cls;
		tr.appendChild(td);
		return td;
	}

	function emptyRow(tbody, cols, text) {
		var tr = document.createElement('tr');
		var td = cell(tr, text, 'empty');
		td.colSpan = cols;
		tbody.appendChild(tr);
	}

	/* a doughnut and its legend table: name, revenue, share */
	function renderSplit(key, rows, nameCol) {
		var names = rows.map(function (r) { return r[nameCol] === null ? '(unknown)' : String(r[nameCol]); });
		setChart(charts[key], names, [{
			data: rows.map(function (r) { return num(r.revenue); }),
			backgroundColor: rows.map(function (r, i) { return palette[i % palette.length]; }),
			borderWidth: 1
		}]);
		var table = $('table-' + key);
		table.textContent = '';
		var tbody = document.createElement('tbody');
		if (rows.length === 0)
			emptyRow(tbody, 3, 'no sales yet');
		rows.forEach(function (r, i) {
			var tr = document.createElement('tr');
			tr.dataset.name = names[i];
			var td = cell(tr, '');
			var sw = document.createElement('span');
			sw.className = 'swatch';
			sw.style.background = palette[i % palette.length];
			td.appendChild(sw);
			td.appendChild(document.createTextNode(names[i]));
			cell(tr, fmtMoney(r.revenue), 'num revenue');
			cell(tr, r.revenue_share_pct === null ? '–' : Number(r.revenue_share_pct).toFixed(2) + ' %', 'num share');
			tbody.appendChild(tr);
		});
		table.appendChild(tbody);
	}

	function renderTopProducts(rows) {
		setChart(charts.topProducts, rows.map(function (r) { return r.product_name; }), [{
			data: rows.map(function (r) { return num(r.revenue); }),
			backgroundColor: rows.map(function (r, i) { return i < 3 ? '#2f5bea' : '#8fa7f3'; }),
			borderRadius: 3
		}]);
	}

	function renderPrice(rows) {
		setChart(charts.price, rows.map(function (r) { return r.price_band; }), [{
			data: rows.map(function (r) { return num(r.sales_count); }),
			backgroundColor: '#f39c12', borderRadius: 3
		}]);
	}

	function renderTodayTop(rows) {
		var tbody = $('table-today-top').tBodies[0];
		tbody.textContent = '';
		if (rows.length === 0)
			emptyRow(tbody, 5, 'no sales today yet');
		rows.forEach(function (r, i) {
			var tr = document.createElement('tr');
			tr.dataset.productId = r.product_id;
			cell(tr, String(i + 1));
			cell(tr, r.product_name, 'product');
			cell(tr, r.category === null ? '–' : r.category);
			cell(tr, fmtInt(r.quantity), 'num quantity');
			cell(tr, fmtMoney(r.revenue), 'num revenue');
			tbody.appendChild(tr);
		});
	}

	function renderPipelines(rows) {
		var tbody = $('table-pipelines').tBodies[0];
		tbody.textContent = '';
		if (rows.length === 0)
			emptyRow(tbody, 9, 'no pipeline writes into this model');
		rows.forEach(function (r) {
			var tr = document.createElement('tr');
			tr.dataset.pipeline = r.pipeline;
			cell(tr, r.pipeline);
			var st = cell(tr, '');
			var b = document.createElement('span');
			b.className = 'badge ' + (r.state === 'running' ? 'running' : r.state === 'failed' ? 'failed' : 'other');
			b.textContent = r.state;
			st.appendChild(b);
			cell(tr, fmtInt(r.partitions), 'num');
			cell(tr, fmtInt(r.lag === null ? 0 : r.lag), 'num lag');
			cell(tr, decimal.format(Number(r.rows_per_second) || 0), 'num rate');
			cell(tr, fmtInt(r.rows_written), 'num');
			var dl = cell(tr, r.dead_letters === null ? 'n/a' : fmtInt(r.dead_letters), 'num dead');
			if (r.dead_letters === null)
				dl.title = 'counted for roles with the rights of the pipeline\'s owner';
			cell(tr, r.last_commit_at ? ago(r.last_commit_at) : '–');
			var err = cell(tr, r.last_error || '', 'err');
			err.title = r.last_error || '';
			tbody.appendChild(tr);
		});
	}

	function render(doc) {
		var v = doc.views;
		var a = (v.kpi_as_of || [])[0];
		if (a && a.time_zone)
			timeZone = a.time_zone;
		setText('schema', doc.schema);
		renderCards(v);
		renderSeries();
		renderTopProducts(v.kpi_top_products || []);
		renderPrice(v.kpi_price_distribution || []);
		renderSplit('category', v.kpi_sales_by_category || [], 'category');
		renderSplit('region', v.kpi_sales_by_region || [], 'region');
		renderSplit('segment', v.kpi_sales_by_segment || [], 'segment');
		renderSplit('today-category', v.kpi_today_by_category || [], 'category');
		renderTodayTop(v.kpi_today_top_products || []);
		renderPipelines(v.pipeline_status || []);
	}

	/* ------------------------------------------------------------ refresh */

	function setState(ok, reason) {
		var dot = $('live-dot');
		document.body.dataset.state = ok ? 'live' : 'stale';
		dot.className = 'dot ' + (ok ? 'live' : 'stale');
		if (ok) {
			$('stale-banner').hidden = true;
			setText('status-text', 'live · updated ' +
				fmtTime(lastOk.toISOString(), {hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false}) +
				' · every ' + period + ' s');
		} else {
			$('stale-banner').hidden = false;
			setText('stale-text', 'The last refresh failed (' + reason + '). ' +
				(lastOk ? 'The figures below are from ' + lastOk.toLocaleTimeString('en-US', {hour12: false}) +
					', ' + ago(lastOk.toISOString()) + '.' : 'No figures could be read yet.') +
				' Retrying every ' + period + ' s.');
			setText('status-text', 'stale');
		}
	}

	function refresh() {
		var ctl = new AbortController();
		var timer = setTimeout(function () { ctl.abort(); }, Math.max(4000, period * 1000));
		fetch('/api/dashboard', {cache: 'no-store', signal: ctl.signal})
			.then(function (r) {
				if (!r.ok)
					throw new Error('HTTP ' + r.status + ' ' + r.statusText);
				return r.json();
			})
			.then(function (doc) {
				data = doc;
				lastOk = new Date();
				render(doc);
				refreshes++;
				document.body.dataset.refreshes = String(refreshes);
				document.body.dataset.fetchedAt = doc.fetched_at;
				setState(true);
			})
			.catch(function (e) {
				setState(false, e.name === 'AbortError' ? 'no answer' : (e.message || String(e)));
			})
			.finally(function () {
				clearTimeout(timer);
				setTimeout(refresh, period * 1000);
			});
	}

	document.addEventListener('DOMContentLoaded', function () {
		document.body.dataset.refreshes = '0';
		setText('refresh-note', 'refreshes every ' + period + ' s (?refresh=N to change)');
		document.querySelectorAll('.switch button').forEach(function (b) {
			b.addEventListener('click', function () {
				grain = b.dataset.grain;
				renderSeries();
			});
		});
		initCharts();
		refresh();
	});
})();
