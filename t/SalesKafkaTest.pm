=pod

=head1 NAME

SalesKafkaTest - helpers shared by the sales_kafka TAP tests (t/*.pl)

=head1 SYNOPSIS

  use FindBin;
  use lib $FindBin::RealBin;
  use SalesKafkaTest;

  my $node = new_node('main');          # preloaded, not started
  $node->start;
  my $topic = create_topic('orders', 3); # "<prefix>orders"
  produce($topic, 0, 'm1', 'm2');
  broker_ctl('down', 1) if is_mock();
  poll_until(sub { ... }, 30, 'the worker to catch up') or die;

=head1 DESCRIPTION

test/run-tests.sh starts the broker (or takes a real cluster from
KAFKA_BROKERS) and runs prove with this environment:

  SK_TEST_BROKERS       bootstrap list, host:port,...
  SK_TEST_TOPIC_PREFIX  per-run prefix of every topic name
  SK_TEST_BROKER_CTL    control socket of the test broker; empty against a
                        real cluster
  SK_TEST_BROKER_BIN    absolute path of test/kafka/sk_test_broker
  SK_TEST_CONF          absolute path of test/sales_kafka.conf

Nothing here may depend on the broker being the mock one, except
broker_ctl(), which dies unless is_mock() is true: guard such tests with
C<skip ... unless is_mock()>.

=cut

package SalesKafkaTest;

use strict;
use warnings;

use Exporter 'import';
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More ();
use Time::HiRes qw(time usleep);

our @EXPORT = qw(new_node brokers topic_prefix is_mock broker_ctl
  create_topic produce poll_until try_query wait_pipeline_running
  postmaster_children process_alive check_server_log);

# Seconds any one broker program or kcat call may take.
my $command_timeout = 60;

sub _env
{
	my ($name, %opts) = @_;
	my $value = $ENV{$name};
	die "$name is not set: run the TAP tests through test/run-tests.sh (make test)\n"
	  unless defined $value && ($opts{empty_ok} || $value ne '');
	return $value;
}

# A value quoted for postgresql.conf.
sub _conf_quote
{
	my ($value) = @_;
	$value =~ s/'/''/g;
	return "'$value'";
}

# Run a command (array ref) with a timeout; die with its output on failure.
# Returns its standard output.
sub _run
{
	my ($cmd, $stdin) = @_;
	my ($out, $err) = ('', '');
	$stdin = '' unless defined $stdin;
	my $ok = eval {
		IPC::Run::run($cmd, '<', \$stdin, '>', \$out, '2>', \$err,
			IPC::Run::timeout($command_timeout));
	};
	die "command failed: @$cmd\n"
	  . ($@ ? "$@" : "exit status " . ($? >> 8) . "\n")
	  . "stdout: $out\nstderr: $err\n"
	  unless $ok;
	return $out;
}

=pod

=over

=item new_node($name, %opts)

A PostgreSQL::Test::Cluster node, init-ed with %opts (passed to init), with
test/sales_kafka.conf appended, then sales_kafka.brokers, sk_test.topic_prefix
and sk_test.broker_ctl. Not started.

=cut

sub new_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%opts);
	$node->append_conf('postgresql.conf',
		"\n# test/sales_kafka.conf\n" . slurp_file(_env('SK_TEST_CONF')));
	$node->append_conf('postgresql.conf',
		join("\n",
			'# set by SalesKafkaTest for this run',
			'sales_kafka.brokers = ' . _conf_quote(brokers()),
			'sk_test.topic_prefix = ' . _conf_quote(topic_prefix()),
			'sk_test.broker_ctl = '
			  . _conf_quote(_env('SK_TEST_BROKER_CTL', empty_ok => 1)),
			''));
	return $node;
}

=item brokers()

The bootstrap list of the run's Kafka cluster.

=cut

sub brokers
{
	return _env('SK_TEST_BROKERS');
}

=item topic_prefix()

The run's topic prefix; the fixture topic "watermarks3" is
C<topic_prefix() . 'watermarks3'>.

=cut

sub topic_prefix
{
	return _env('SK_TEST_TOPIC_PREFIX', empty_ok => 1);
}

=item is_mock()

True when the run uses the test broker (which broker_ctl can drive), false
against a real cluster.

=cut

sub is_mock
{
	my $ctl = $ENV{SK_TEST_BROKER_CTL};
	return defined $ctl && $ctl ne '';
}

=item broker_ctl(@command)

Sends one control command to the test broker, e.g. C<broker_ctl('down', 1)>,
C<broker_ctl('error', 'Fetch', 'NOT_LEADER_FOR_PARTITION', 3)>,
C<broker_ctl('clear')>. Dies if the broker answers with an error, or when not
is_mock(). Returns the broker's reply.

=cut

sub broker_ctl
{
	my @cmd = @_;
	die "broker_ctl(@cmd) needs the test broker; guard the test with is_mock()\n"
	  unless is_mock();
	return _run([ _env('SK_TEST_BROKER_BIN'), 'ctl', $ENV{SK_TEST_BROKER_CTL}, @cmd ]);
}

=item create_topic($name, $partitions)

Creates topic C<topic_prefix() . $name> (on the test broker or the real
cluster) and returns that full name.

=cut

sub create_topic
{
	my ($name, $partitions) = @_;
	my $topic = topic_prefix() . $name;
	if (is_mock())
	{
		broker_ctl('topic', $topic, $partitions);
	}
	else
	{
		_run([ _env('SK_TEST_BROKER_BIN'), 'create-topics', brokers(),
			"$topic:$partitions" ]);
	}
	return $topic;
}

=item produce($topic, $partition, @values)

Produces one message per value, without key, to partition $partition (undef:
the partitioner picks) of $topic, a full topic name such as create_topic()
returns. Waits until the broker has acknowledged every message; dies on
failure. Values must not contain newlines.

=cut

sub produce
{
	my ($topic, $partition, @values) = @_;
	die "produce: a value contains a newline\n" if grep { /\n/ } @values;
	_run(
		[
			'kcat', '-P', '-b', brokers(), '-t', $topic,
			(defined $partition ? ('-p', $partition) : ()),
			'-X', 'log_level=3'
		],
		join('', map { "$_\n" } @values));
	return;
}

=item poll_until($code, $timeout_s, $what)

Calls $code every 50 ms until it returns true (then returns true) or
$timeout_s seconds have passed (then reports "timed out ... waiting for
$what" as a TAP diagnostic and returns false). $timeout_s defaults to the
PostgreSQL test suite's default timeout (PG_TEST_TIMEOUT_DEFAULT, 180 s).

=cut

sub poll_until
{
	my ($code, $timeout_s, $what) = @_;
	$timeout_s = $PostgreSQL::Test::Utils::timeout_default
	  unless defined $timeout_s;
	my $deadline = time + $timeout_s;
	while (1)
	{
		return 1 if $code->();
		last if time >= $deadline;
		usleep(50_000);
	}
	Test::More::diag("timed out after ${timeout_s}s waiting for "
		  . (defined $what ? $what : 'a condition'));
	return 0;
}

=item try_query($node, $db, $sql)

Runs $sql in database $db of $node with a 30 s timeout; returns its output,
or undef if it failed or timed out (while a server restarts, say).

=cut

sub try_query
{
	my ($node, $db, $sql) = @_;
	my $timed_out;
	my ($ret, $out, $err) =
	  $node->psql($db, $sql, timeout => 30, timed_out => \$timed_out);
	return !$timed_out && defined $ret && $ret == 0 ? $out : undef;
}

=item wait_pipeline_running($node, $db, $pipeline, $workers, $timeout_s, $what)

poll_until() pipeline $pipeline of database $db shows state "running" with
$workers worker processes in sales_kafka.pipeline_status.

=cut

sub wait_pipeline_running
{
	my ($node, $db, $pipeline, $workers, $timeout_s, $what) = @_;
	return poll_until(
		sub {
			my $r = try_query($node, $db,
				"SELECT state = 'running' AND cardinality(worker_pids) = $workers"
				  . " FROM sales_kafka.pipeline_status WHERE pipeline = '$pipeline'");
			defined $r && $r eq 't';
		},
		$timeout_s,
		$what);
}

=item postmaster_children($ppid)

The pids of a postmaster's child processes (from /proc).

=cut

sub postmaster_children
{
	my ($ppid) = @_;
	my @kids;
	opendir(my $dh, '/proc') or die "cannot read /proc: $!";
	for my $pid (grep { /^\d+$/ } readdir($dh))
	{
		open(my $fh, '<', "/proc/$pid/stat") or next;
		my $stat = <$fh>;
		close($fh);
		# pid (comm) state ppid ...; comm may hold spaces and parentheses
		push @kids, $pid
		  if defined $stat && $stat =~ /\)\s+\S+\s+(\d+)/ && $1 == $ppid;
	}
	closedir($dh);
	return @kids;
}

=item process_alive($pid)

True while a process exists and is not a zombie.

=cut

sub process_alive
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/stat") or return 0;
	my $stat = <$fh>;
	close($fh);
	return defined $stat && $stat !~ /\)\s+Z\s/;
}

=item check_server_log($node, $kills)

One test: the node's server log shows no PANIC, assertion failure or
crash; with $kills true, except processes the test itself killed with
SIGKILL.

=cut

sub check_server_log
{
	my ($node, $kills) = @_;
	my $signal = $kills ? qr/terminated by signal (?!9\b)/ : qr/terminated by signal/;
	# TRAP: as PostgreSQL writes a failed assertion (not "bootstrap:")
	my @bad = grep { /\bTRAP: |(?i:PANIC|$signal|segmentation fault)/ }
	  split /\n/, PostgreSQL::Test::Utils::slurp_file($node->logfile);
	return Test::More::is_deeply(\@bad, [],
		$kills
		? 'no PANIC, assertion failure or crash other than the kills in the server log'
		: 'no PANIC, assertion failure or crash in the server log');
}

=back

=cut

1;
