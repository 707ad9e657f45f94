# frozen_string_literal: true

# brew_formula_test.rb FORMULA DIST_DIR [--build]
#
# Homebrew cannot be installed here, so this loads the generated formula
# (scripts/brew-formula) against a stub of the part of Homebrew's Formula DSL
# it uses, and fails on anything else (an unknown DSL call is named, never
# ignored). It then does what `brew install --build-from-source` and
# `brew test` would:
#
# 1. every url has a sha256, that sha256 is the file's (the file of that name
#    in DIST_DIR, also checked against SHA256SUMS), and the version Homebrew
#    derives from the url is Cargo.toml's;
# 2. the source tarball is unpacked into a fresh directory and the formula's
#    `install` block runs in it: `system` calls are recorded and checked
#    (`cargo install` with std_cargo_args), `--build` runs that cargo install
#    for real (offline, into a private target dir); without it the static kcc
#    from DIST_DIR's Linux archive (built from the same commit by
#    scripts/dist) stands in for its output. Every `install`/`install_symlink`
#    really copies or links into a fake prefix laid out like Homebrew's, so a
#    file the formula names that the tarball lacks fails here;
# 3. the installed tree must hold kcc, the kcc-cache/kcc-injector links, the
#    three man pages and the bash/zsh/fish completions (with the links bash
#    and fish need);
# 4. the `test do` block runs for real against that prefix (the commands it
#    runs are recorded and printed): a miss, a hit, `kcc cache`, one plugin run.
#
# Run by .ci/packages after `ruby -c FORMULA`.

require "digest"
require "fileutils"
require "open3"
require "pathname"
require "tmpdir"

formula_arg, dist_arg = ARGV.reject { |a| a.start_with?("--") }
abort "usage: ruby pkg/tests/brew_formula_test.rb FORMULA DIST_DIR [--build]" unless formula_arg && dist_arg
# Absolute: the install block runs in the unpacked tarball.
FORMULA_PATH = File.expand_path(formula_arg)
DIST_DIR = File.expand_path(dist_arg)
BUILD = ARGV.include?("--build")
REPO = File.expand_path("../..", __dir__)

$failures = []
def check(ok, msg)
  if ok
    puts "brew_formula_test: ok: #{msg}"
  else
    warn "brew_formula_test: FAIL: #{msg}"
    $failures << msg
  end
end

# Homebrew's Pathname extensions the formula uses (brew's extend/pathname.rb).
class Pathname
  # install "a", "b" or install "a" => "new_name": move files from the build
  # directory into this directory.
  def install(*sources)
    mkpath
    sources.each do |src|
      pairs = src.is_a?(Hash) ? src.to_a : [[src, File.basename(src.to_s)]]
      pairs.each do |from, to|
        raise "install: '#{from}' does not exist in the source tree" unless File.exist?(from.to_s)

        FileUtils.cp_r(from.to_s, (self / to.to_s).to_s)
        Formula.record("#{self}.install #{from} => #{to}")
      end
    end
  end

  # install_symlink "target" => "name": a relative symlink in this directory.
  def install_symlink(*sources)
    mkpath
    sources.each do |src|
      pairs = src.is_a?(Hash) ? src.to_a : [[src, File.basename(src.to_s)]]
      pairs.each do |target, name|
        link = self / name.to_s
        full = Pathname(target.to_s).expand_path(self)
        link.make_symlink(full.relative_path_from(self))
        Formula.record("#{self}.install_symlink #{name} -> #{target}")
      end
    end
  end
end

# The stub: class-level DSL records what the formula declares; instance
# methods give the install and test blocks Homebrew's paths and helpers.
class Formula
  DSL = %i[desc homepage url sha256 license head].freeze
  @declared = Hash.new { |h, k| h[k] = [] }
  @log = []
  class << self
    attr_reader :declared, :log, :test_block, :subclass

    def inherited(sub)
      super
      @subclass = sub
    end

    DSL.each do |name|
      define_method(name) { |*args, **kw| Formula.declared[name] << [args, kw] }
    end

    def depends_on(spec)
      Formula.declared[:depends_on] << spec
    end

    def test(&block)
      Formula.instance_variable_set(:@test_block, block)
    end

    def record(line)
      Formula.log << line
    end

    def method_missing(name, *_args)
      raise NoMethodError, "the formula calls '#{name}', which this stub of Homebrew's DSL does not know: " \
                           "check Homebrew has it, then add it to pkg/tests/brew_formula_test.rb"
    end

    def respond_to_missing?(*) = false
  end

  attr_reader :prefix, :testpath, :version

  def initialize(prefix, testpath, version)
    @prefix = Pathname(prefix)
    @testpath = Pathname(testpath)
    @version = version
  end

  def bin = prefix/"bin"
  def man1 = prefix/"share/man/man1"
  def bash_completion = prefix/"etc/bash_completion.d"
  def zsh_completion = prefix/"share/zsh/site-functions"
  def fish_completion = prefix/"share/fish/vendor_completions.d"

  def std_cargo_args
    ["--locked", "--root=#{prefix}", "--path=."]
  end

  def system(*args)
    Formula.record("system #{args.join(" ")}")
    if args[0, 2] == %w[cargo install]
      check(args.include?("--locked") && args.include?("--root=#{prefix}") && args.include?("--path=."),
            "install runs cargo install with std_cargo_args (--locked --root --path=.)")
      if BUILD
        env = { "CARGO_NET_OFFLINE" => "true", "CARGO_TARGET_DIR" => File.join(REPO, "target/brew") }
        Kernel.system(env, *args, exception: true)
      else
        stand_in_for_cargo_install
      end
    else
      Kernel.system(*args, exception: true)
    end
  end

  # The static kcc scripts/dist built from the same commit with the same
  # `cargo build --locked --release`, where `cargo install` would put it.
  def stand_in_for_cargo_install
    archive = Dir[File.join(DIST_DIR, "kcc-*-x86_64-unknown-linux-gnu.tar.gz")].first
    raise "no Linux archive in #{DIST_DIR} to stand in for cargo install (or pass --build)" unless archive

    bin.mkpath
    folder = File.basename(archive, ".tar.gz")
    Kernel.system("tar", "-xzf", archive, "-C", bin.to_s, "--strip-components=1", "#{folder}/kcc", exception: true)
  end

  def chmod(mode, path)
    FileUtils.chmod(mode, path.to_s)
  end

  def shell_output(cmd, result = 0)
    Formula.record("test: #{cmd}")
    out, status = Open3.capture2("/bin/sh", "-c", cmd)
    raise "'#{cmd}' exited #{status.exitstatus}, expected #{result}:\n#{out}" unless status.exitstatus == result

    out
  end

  def assert_match(pattern, string)
    ok = pattern.is_a?(Regexp) ? pattern.match?(string) : string.include?(pattern.to_s)
    raise "assert_match: #{pattern.inspect} not in #{string.inspect}" unless ok
  end

  def assert_equal(expected, actual)
    raise "assert_equal: expected #{expected.inspect}, got #{actual.inspect}" unless expected == actual
  end
end

def link_to?(path, target)
  path.symlink? && path.readlink.to_s == target
end

def cargo_version
  File.read(File.join(REPO, "Cargo.toml"))[/^version = "([^"]+)"/, 1]
end

def sums
  File.readlines(File.join(DIST_DIR, "SHA256SUMS")).to_h { |l| l.split.reverse.then { |n, d| [n.delete_prefix("*"), d] } }
end

load FORMULA_PATH
klass = Formula.subclass
check(klass&.name == "Kcc", "the formula defines class Kcc < Formula")
d = Formula.declared
%i[desc homepage license].each { |k| check(d[k].size == 1, "one #{k}") }
check(d[:depends_on].include?({ "rust" => :build }), 'depends_on "rust" => :build')

# 1. urls, hashes, version.
urls = d[:url].map { |args, _| args[0] }
check(urls.size == 1 && d[:sha256].size == urls.size, "every url has one sha256 (#{urls.size} url, #{d[:sha256].size} sha256)")
source = nil
urls.zip(d[:sha256]).each do |url, (sha_args, _)|
  name = File.basename(url)
  file = File.join(DIST_DIR, name)
  check(File.file?(file), "url #{url} names a file scripts/dist wrote (#{name})")
  next unless File.file?(file)

  digest = Digest::SHA256.file(file).hexdigest
  check(sha_args[0] == digest, "sha256 of #{name} is the formula's")
  check(sums[name] == digest, "#{name} matches its SHA256SUMS line")
  # Homebrew's version detection for name-version.tar.gz.
  check(name[/-(\d+(?:\.\d+)+)\.tar\.gz\z/, 1] == cargo_version,
        "the version brew derives from #{name} is Cargo.toml's #{cargo_version}")
  source = file
end
abort "brew_formula_test: #{$failures.size} failure(s)" unless source && $failures.empty?

# 2. install from the unpacked source tarball.
Dir.mktmpdir("kcc-brew-") do |tmp|
  build = File.join(tmp, "build")
  prefix = File.join(tmp, "Cellar/kcc/#{cargo_version}")
  testpath = File.join(tmp, "test")
  FileUtils.mkdir_p([build, testpath])
  Kernel.system("tar", "-xzf", source, "-C", build, exception: true)
  tops = Dir.children(build)
  check(tops == ["kcc-#{cargo_version}"], "the source tarball has one top folder kcc-#{cargo_version} (#{tops})")
  formula = klass.new(prefix, testpath, cargo_version)
  Dir.chdir(File.join(build, tops[0])) { formula.install }

  # 3. the installed tree.
  p = Pathname(prefix)
  check((p/"bin/kcc").file? && (p/"bin/kcc").executable?, "bin/kcc installed")
  %w[kcc-cache kcc-injector].each do |n|
    check(link_to?(p/"bin"/n, "kcc"), "bin/#{n} -> kcc")
  end
  %w[kcc.1 kcc-cache.1 kcc-injector.1].each { |m| check((p/"share/man/man1"/m).file?, "man page #{m}") }
  check((p/"etc/bash_completion.d/kcc").file?, "bash completion kcc")
  %w[kcc-cache kcc-injector].each do |n|
    check(link_to?(p/"etc/bash_completion.d"/n, "kcc"), "bash completion #{n} -> kcc")
    check(link_to?(p/"share/fish/vendor_completions.d/#{n}.fish", "kcc.fish"), "fish completion #{n}.fish -> kcc.fish")
  end
  check((p/"share/zsh/site-functions/_kcc").file?, "zsh completion _kcc")
  check((p/"share/fish/vendor_completions.d/kcc.fish").file?, "fish completion kcc.fish")

  # 4. the test block, for real, in a clean environment like brew test's.
  saved = ENV.to_h
  begin
    ENV["HOME"] = testpath
    formula.instance_eval(&Formula.test_block)
    check(true, "the test block passed (a miss, a hit, kcc cache, one plugin run, --version)")
  rescue StandardError => e
    check(false, "the test block: #{e.message}")
  ensure
    ENV.replace(saved)
  end
end
puts Formula.log.map { |l| "  #{l}" }
abort "brew_formula_test: #{$failures.size} failure(s)" unless $failures.empty?
puts "brew_formula_test: the formula installs kcc from its source tarball and its test block passes"
