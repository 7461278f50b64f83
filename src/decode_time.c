/*-------------------------------------------------------------------------
 *
 * decode_time.c
 *		Time values as producers write them: the column options
 *		"time_format" (epoch numbers in a given unit, or a to_timestamp()
 *		template such as 'MM/DD/YYYY') and "time_zone" (the zone of a time
 *		written without an offset).
 *
 * A column of type timestamptz, timestamp or date (or a domain over one)
 * without either option reads numbers as epoch milliseconds and text
 * through its type's input function (decode.c does that itself, with its
 * fast paths).  With one of them, decode.c hands the field's text to
 * sk_time_from_text():
 *	- "epoch", "epoch_s", "epoch_ms", "epoch_us": a number (a JSON number,
 *	  or text that is a plain decimal number) is seconds, milliseconds or
 *	  microseconds since 1970-01-01 00:00 UTC; "epoch" tells the unit by
 *	  the magnitude: below 1e11 seconds (up to the year 5138), below 1e14
 *	  milliseconds (from 1973-03-03), else microseconds.  Other text is read
 *	  as without the option.
 *	- a template: every value is read with it, as to_timestamp(value,
 *	  template) reads it but in its strict mode (the whole value and the
 *	  whole template must be used), whatever DateStyle says, except text
 *	  that begins as an ISO 8601 date (YYYY-MM-DD), which is read as ISO 8601
 *	  (so that data in the dataset's form and ours mix).
 *	- "time_zone" (timestamptz only): text without an offset is a local
 *	  time of that zone, not of the session's TimeZone (for a pipeline
 *	  worker, the server's).
 *
 * The validator checks both options with the functions here (a template
 * must read back what it writes, and give a date); the mapping checks the
 * column's type.  Conversions throw data errors (class 22), which a
 * pipeline turns into dead letters.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/formatting.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "sales_kafka.h"

/* Values of "time_format" that are not templates, in the order of SkTimeFormat */
const char *const sk_time_format_names[] = {
	"epoch", "epoch_s", "epoch_ms", "epoch_us", NULL
};

/* What "time_format" says, without checking a template */
static SkTimeFormat
format_kind(const char *value)
{
	int			i = sk_options_lookup(sk_time_format_names, value);

	return i >= 0 ? (SkTimeFormat) (SK_TIME_EPOCH + i) : SK_TIME_TEMPLATE;
}

/* A template, and what it reads back */
typedef struct TemplateCheck
{
	const char *template;
	Oid			typid;
	bool		whole_date;		/* read back the sample's date */
} TemplateCheck;

/*
 * Write 2001-02-03 04:05:06.789012 with the template, and read it back:
 * what it reads must be a date, or a time with a date, and a date without
 * an offset must be the sample's (a template without a year, a month or a
 * day reads another).
 */
static void
check_template_work(void *arg)
{
	TemplateCheck *check = (TemplateCheck *) arg;
	text	   *fmt = cstring_to_text(check->template);
	Timestamp	sample;
	Datum		written;
	Datum		read;
	int32		typmod;
	int			tz;

	sample = ((int64) (date2j(2001, 2, 3) - POSTGRES_EPOCH_JDATE) * SECS_PER_DAY +
			  4 * SECS_PER_HOUR + 5 * SECS_PER_MINUTE + 6) * USECS_PER_SEC + 789012;
	written = DirectFunctionCall2(timestamp_to_char, TimestampGetDatum(sample),
								  PointerGetDatum(fmt));
	read = parse_datetime(DatumGetTextPP(written), fmt, DEFAULT_COLLATION_OID,
						  true, &check->typid, &typmod, &tz, NULL);
	if (check->typid == TIMESTAMPOID)
		read = DirectFunctionCall1(timestamp_date, read);
	check->whole_date = check->typid == TIMESTAMPTZOID ||
		(check->typid != TIMEOID && check->typid != TIMETZOID &&
		 DatumGetDateADT(read) == date2j(2001, 2, 3) - POSTGRES_EPOCH_JDATE);
}

/*
 * Check a value of the column option "time_format" and say what it is.
 * Throws ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE for a template that does not
 * read back what it writes, or reads no date.  Needs a transaction (it
 * tries the template in a subtransaction).
 */
SkTimeFormat
sk_time_check_format(const char *value)
{
	TemplateCheck check;
	ErrorData  *edata;

	if (format_kind(value) != SK_TIME_TEMPLATE)
		return format_kind(value);

	check.template = value;
	check.typid = InvalidOid;
	check.whole_date = false;
	edata = value[0] == '\0' ? NULL :
		sk_try_subtransaction(check_template_work, &check);
	if (edata != NULL && !sk_is_data_error(edata->sqlerrcode))
		ReThrowError(edata);
	if (edata != NULL || value[0] == '\0' || !check.whole_date)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"time_format\": \"%s\"", value),
				 edata != NULL ?
				 errdetail("The template cannot read what it writes: %s.", edata->message) :
				 errdetail("A template must read a whole date, as \"MM/DD/YYYY\" or \"DD.MM.YYYY HH24:MI\" do."),
				 errhint("Valid values are \"epoch\", \"epoch_s\", \"epoch_ms\", \"epoch_us\", or a template of to_timestamp().")));
	return SK_TIME_TEMPLATE;
}

/*
 * Check a value of the column option "time_zone" and return the zone.
 * Throws ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE for a name the server does not
 * know.
 */
pg_tz *
sk_time_check_zone(const char *value)
{
	pg_tz	   *zone = value[0] != '\0' ? pg_tzset(value) : NULL;

	if (zone == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"time_zone\": \"%s\"", value),
				 errdetail("The value must be a time zone name of pg_timezone_names, such as \"America/New_York\" or \"UTC\".")));
	return zone;
}

/* ---------------------------------------------------------------------
 * Conversions
 * ---------------------------------------------------------------------
 */

static void pg_attribute_noreturn()
out_of_range(SkColumn *col, const char *str)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
			 errmsg("timestamp out of range for column \"%s\": \"%s\"",
					col->name, str)));
}

/* A timestamp rounded to the column's precision, as its input function would */
static Timestamp
precision(SkColumn *col, Timestamp ts)
{
	int32		typmod = col->typid == col->basetypid ? col->typmod :
		col->basetypmod;

	if (typmod >= 0)
		AdjustTimestampForTypmod(&ts, typmod);
	return ts;
}

/* A local time of zone as a timestamptz */
static TimestampTz
local_to_zone(SkColumn *col, const char *str, Timestamp local, pg_tz *zone)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;
	TimestampTz result;

	if (timestamp2tm(local, NULL, &tm, &fsec, NULL, NULL) != 0)
		out_of_range(col, str);
	tz = DetermineTimeZoneOffset(&tm, zone);
	if (tm2timestamp(&tm, fsec, &tz, &result) != 0 || !IS_VALID_TIMESTAMP(result))
		out_of_range(col, str);
	return result;
}

/*
 * A date, a local timestamp (in the column's zone, else the session's) or
 * a timestamptz as a value of the column's base type.
 */
static Datum
to_column(SkColumn *col, const char *str, Datum value, Oid typid)
{
	Oid			base = col->basetypid;

	if (typid == DATEOID)
	{
		if (base == DATEOID)
			return value;
		value = DirectFunctionCall1(date_timestamp, value);
		typid = TIMESTAMPOID;
	}
	if (typid == TIMESTAMPOID)
	{
		if (base == TIMESTAMPOID)
			return TimestampGetDatum(precision(col, DatumGetTimestamp(value)));
		if (base == DATEOID)
			return DirectFunctionCall1(timestamp_date, value);
		value = TimestampTzGetDatum(local_to_zone(col, str, DatumGetTimestamp(value),
												  col->time_zone ? col->time_zone :
												  session_timezone));
	}
	if (base == TIMESTAMPTZOID)
		return TimestampTzGetDatum(precision(col, DatumGetTimestampTz(value)));
	if (base == TIMESTAMPOID)
		return TimestampGetDatum(precision(col, DatumGetTimestamp(DirectFunctionCall1(timestamptz_timestamp, value))));
	return DirectFunctionCall1(timestamptz_date, value);
}

/* A plain decimal number, as text: [-]digits[.digits] */
static bool
decimal_text(const char *s)
{
	bool		digits = false;

	if (*s == '-')
		s++;
	for (; *s >= '0' && *s <= '9'; s++)
		digits = true;
	if (*s == '.' && digits)
	{
		digits = false;
		for (s++; *s >= '0' && *s <= '9'; s++)
			digits = true;
	}
	return digits && *s == '\0';
}

/* An epoch number in a unit (SK_TIME_EPOCH: told by its magnitude) */
static Datum
from_epoch(SkColumn *col, const char *str, SkTimeFormat unit)
{
	char	   *end;
	double		v;
	double		us;
	TimestampTz ts;

	errno = 0;
	v = strtod(str, &end);
	if (*end != '\0' || end == str || errno != 0 || isnan(v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
				 errmsg("invalid epoch time for column \"%s\": \"%s\"",
						col->name, str)));
	if (unit == SK_TIME_EPOCH)
		unit = fabs(v) < 1e11 ? SK_TIME_EPOCH_S :
			fabs(v) < 1e14 ? SK_TIME_EPOCH_MS : SK_TIME_EPOCH_US;
	us = v * (unit == SK_TIME_EPOCH_S ? 1e6 : unit == SK_TIME_EPOCH_MS ? 1e3 : 1.0);
	if (!(us > -1e18 && us < 1e18))
		out_of_range(col, str);
	ts = (TimestampTz) rint(us) -
		(int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * USECS_PER_SEC;
	if (!IS_VALID_TIMESTAMP(ts))
		out_of_range(col, str);
	return to_column(col, str, TimestampTzGetDatum(ts), TIMESTAMPTZOID);
}

/* Text read with the column's template */
static Datum
from_template(SkColumn *col, const char *str)
{
	Oid			typid;
	int32		typmod;
	int			tz;
	Datum		value;

	value = parse_datetime(cstring_to_text(str), col->time_template,
						   DEFAULT_COLLATION_OID, true, &typid, &typmod, &tz,
						   NULL);
	if (typid != DATEOID && typid != TIMESTAMPOID && typid != TIMESTAMPTZOID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
				 errmsg("option \"time_format\" of column \"%s\" reads no date",
						col->name)));
	return to_column(col, str, value, typid);
}

/*
 * Text as the column's type reads it; for a timestamptz column with a zone,
 * a time without an offset is one of that zone.
 */
static Datum
from_text(SkColumn *col, const char *str)
{
	int32		typmod = col->typid == col->basetypid ? col->typmod :
		col->basetypmod;

	if (col->basetypid == TIMESTAMPTZOID && col->time_zone != NULL &&
		strlen(str) < MAXDATELEN)
	{
		char		workbuf[MAXDATELEN + MAXDATEFIELDS];
		char	   *field[MAXDATEFIELDS];
		int			ftype[MAXDATEFIELDS];
		int			nf;
		int			dtype;
		struct pg_tm tm;
		fsec_t		fsec;
		Timestamp	local;

		/* without a place for the zone, decoding fails when the text has one */
		if (ParseDateTime(str, workbuf, sizeof(workbuf), field, ftype,
						  MAXDATEFIELDS, &nf) == 0 &&
			sk_decode_datetime_without_zone(field, ftype, nf, &dtype, &tm, &fsec) &&
			dtype == DTK_DATE)
		{
			if (tm2timestamp(&tm, fsec, NULL, &local) != 0)
				out_of_range(col, str);
			return to_column(col, str, TimestampGetDatum(local), TIMESTAMPOID);
		}
	}
	switch (col->basetypid)
	{
		case TIMESTAMPTZOID:
			return DirectFunctionCall3(timestamptz_in, CStringGetDatum(str),
									   ObjectIdGetDatum(InvalidOid),
									   Int32GetDatum(typmod));
		case TIMESTAMPOID:
			return DirectFunctionCall3(timestamp_in, CStringGetDatum(str),
									   ObjectIdGetDatum(InvalidOid),
									   Int32GetDatum(typmod));
		default:
			return DirectFunctionCall1(date_in, CStringGetDatum(str));
	}
}

/* Does the text begin as an ISO 8601 date, YYYY-MM-DD? */
static bool
iso_date_prefix(const char *s)
{
	int			i;

	for (i = 0; i < 10; i++)
		if (i == 4 || i == 7 ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
			return false;
	return s[10] == '\0' || s[10] == 'T' || s[10] == ' ';
}

/*
 * A payload field's text (NUL-terminated; is_number for a JSON number) as
 * a value of a time column that has the option "time_format" or
 * "time_zone": of the column's base type, rounded to its precision, its
 * domain not checked.  Throws a data error for text the column cannot
 * read.
 */
Datum
sk_time_from_text(SkColumn *col, const char *str, bool is_number)
{
	switch (col->time_format)
	{
		case SK_TIME_TEMPLATE:
			if (!iso_date_prefix(str))
				return from_template(col, str);
			break;
		case SK_TIME_DEFAULT:
			if (is_number || decimal_text(str))
				return from_epoch(col, str, SK_TIME_EPOCH_MS);
			break;
		default:
			if (is_number || decimal_text(str))
				return from_epoch(col, str, col->time_format);
			break;
	}
	return from_text(col, str);
}

/*
 * How a mapping reads the option "time_format" (the validator has checked
 * it); the template is kept as text in CurrentMemoryContext.
 */
void
sk_time_map_format(SkColumn *col, const char *value)
{
	col->time_format = format_kind(value);
	if (col->time_format == SK_TIME_TEMPLATE)
		col->time_template = cstring_to_text(value);
}
